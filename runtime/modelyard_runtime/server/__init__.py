"""The transports: aiohttp (REST v2, TF-Serving v1, health, metrics) and grpc.aio (OIP v2), each
translating its wire to the data plane; and the server's lifecycle (listen, drain, processes)."""
