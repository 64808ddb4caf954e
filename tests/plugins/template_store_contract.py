"""The job template store contract: what every backend must do, as the test methods of a
class taking a `store` fixture. test_templates_backends.py and test_documents_mongo.py
subclass it as `Test...`, each beside its own `store`."""
from __future__ import annotations

from typing import Any

import pytest

from baseshift.core.errors import NotFound
from baseshift.core.templatestore import (
    TemplateExists,
    TemplateIncompatible,
    TemplateStore,
    parse_document,
)

INPUT = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
         "additionalProperties": False}


def doc(name: str = "greet", version: str | None = "1.0.0", kind: str = "shell",
        **extra: Any) -> Any:
    data: dict[str, Any] = {"templateId": name, "inputSchema": INPUT, "steps": [
        {"name": "say", "type": kind, "config": {"command": "echo hi ${input.name}"}}], **extra}
    if version is not None:
        data["version"] = version
    return parse_document(data, need_version=version is not None)


class TemplateStoreContract:
    """Not collected by itself (its name does not start with Test): subclass it in a module
    that defines the `store` fixture."""

    async def test_publish_then_get_exact_range_and_latest(self, store: TemplateStore) -> None:
        for v in ("1.0.0", "1.2.0", "2.0.0"):
            stored = await store.publish(doc(version=v))
            assert stored.created_at is not None
        assert (await store.get("greet")).version == "2.0.0"  # type: ignore[union-attr]
        assert (await store.get("greet", "^1")).version == "1.2.0"  # type: ignore[union-attr]
        got = await store.get("greet", "1.0.0")
        assert got is not None and got.steps == doc().steps and got.input_schema == INPUT
        assert await store.get("greet", "3.0.0") is None
        assert await store.get("nobody") is None


    async def test_versions_are_immutable(self, store: TemplateStore) -> None:
        await store.publish(doc())
        with pytest.raises(TemplateExists):
            await store.publish(doc(description="changed"))
        assert (await store.get("greet")).description is None  # type: ignore[union-attr]


    async def test_bumps_derive_the_version_from_the_latest(self, store: TemplateStore) -> None:
        assert (await store.publish(doc(version=None), "major")).version == "1.0.0"
        assert (await store.publish(doc(version=None), "minor")).version == "1.1.0"
        assert (await store.publish(doc(version=None), "patch")).version == "1.1.1"
        assert (await store.publish(doc(version=None), "major")).version == "2.0.0"


    async def test_an_incompatible_minor_is_refused_and_nothing_is_stored(
            self, store: TemplateStore) -> None:
        await store.publish(doc())
        wider = {**INPUT, "properties": {**INPUT["properties"], "age": {"type": "integer"}},
                 "required": ["name", "age"]}
        with pytest.raises(TemplateIncompatible) as info:
            await store.publish(doc(version="1.1.0", inputSchema=wider))
        assert info.value.reasons == ["input 'age' is now required"]
        assert [d.version for d in await store.list()] == ["1.0.0"]
        await store.publish(doc(version="2.0.0", inputSchema=wider))


    async def test_list_filters_by_name_type_and_version(self, store: TemplateStore) -> None:
        await store.publish(doc("b.two", "1.0.0", "http"))
        await store.publish(doc("a.one", "1.10.0"))
        await store.publish(doc("a.one", "1.9.0"))
        await store.publish(doc("a.one", "2.0.0", "http"))
        assert [d.ref for d in await store.list()] == [
            "a.one@1.9.0", "a.one@1.10.0", "a.one@2.0.0", "b.two@1.0.0"]
        assert [d.ref for d in await store.list("a.one", version="^1")] == [
            "a.one@1.9.0", "a.one@1.10.0"]
        assert [d.ref for d in await store.list(type="http")] == ["a.one@2.0.0", "b.two@1.0.0"]
        assert await store.list("nobody") == []


    async def test_delete_one_version(self, store: TemplateStore) -> None:
        await store.publish(doc())
        await store.publish(doc(version="1.1.0"))
        await store.delete("greet", "1.1.0")
        assert [d.version for d in await store.list()] == ["1.0.0"]
        with pytest.raises(NotFound):
            await store.delete("greet", "1.1.0")
        with pytest.raises(TemplateExists, match="never reused"):
            await store.publish(doc(version="1.1.0"))  # runs may have pinned the deleted one
        assert (await store.publish(doc(version="1.1.1"))).version == "1.1.1"


    async def test_specs_give_every_version_for_the_checker(self, store: TemplateStore) -> None:
        await store.publish(doc())
        await store.publish(doc(version="1.1.0"))
        specs = await store.specs()
        assert [(s.ref, s.uses) for s in specs] == [("greet@1.0.0", "shell"),
                                                     ("greet@1.1.0", "shell")]
        assert await store.specs() == specs
        await store.delete("greet", "1.0.0")
        assert [s.ref for s in await store.specs()] == ["greet@1.1.0"]
