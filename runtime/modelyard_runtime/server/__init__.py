"""The HTTP side of the runtime: aiohttp app factory, routes, error mapping, lifecycle."""
