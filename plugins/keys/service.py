"""The key plugin's objects for one application: its options, key provider, envelope and
sealer, made once (`keys_of`) and kept in the application's stash."""
from __future__ import annotations

from dataclasses import dataclass

from baseshift.core.capabilities import DataKeys, missing_ability
from baseshift.core.protocols import StateStore
from baseshift.core.settings import Settings
from baseshift.core.stash import Stash, StashKey

from .envelope import Envelope, StoreSealer
from .keyfile import LocalKeyFile
from .providers import KeyProvider
from .settings import KeysSettings, keys_settings


@dataclass(frozen=True, slots=True)
class Keys:
    """Everything the key plugin built for one application."""

    settings: KeysSettings
    provider: KeyProvider
    store: DataKeys
    envelope: Envelope
    sealer: StoreSealer


STASH_KEY: StashKey[Keys] = StashKey("keys")


def provider_for(options: KeysSettings) -> KeyProvider:
    """The configured key provider (Vault's imported only when chosen)."""
    if options.provider == "vault":
        from .vault import VaultTransit, vault_client

        assert options.vault is not None
        return VaultTransit(vault_client(options.vault), options.vault)
    return LocalKeyFile(options.key_file)


def data_keys_of(store: StateStore) -> DataKeys:
    """`store` as the keeper of data keys; ConfigError naming it when it cannot."""
    if not isinstance(store, DataKeys):
        raise missing_ability(store, "keep data keys", "sealing secret values (the keys "
                              "plugin)", "use the sqlite, postgres or memory store")
    return store


def build(settings: Settings, store: StateStore) -> Keys:
    """The key plugin's objects for `settings` and `store`."""
    options = keys_settings(settings)
    provider = provider_for(options)
    data_keys = data_keys_of(store)
    envelope = Envelope(data_keys, provider)
    return Keys(options, provider, data_keys, envelope,
                StoreSealer(envelope, renew_uses=options.data_key_uses))


def keys_of(stash: Stash, settings: Settings, store: StateStore) -> Keys:
    """The application's key objects, made on first call."""
    found = stash.get(STASH_KEY)
    if found is None:
        found = stash.setdefault(STASH_KEY, build(settings, store))
    return found
