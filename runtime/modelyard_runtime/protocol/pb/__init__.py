"""Generated OIP v2 gRPC stubs (``make proto``); edit ``inference.proto``, never the output."""
