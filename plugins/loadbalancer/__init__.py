"""The load balancer admin: NGINX in front of a fleet of `baseshift serve` processes, its
upstream servers registered through the API (`[plugins.loadbalancer]`)."""
