"""The bundled demo: a synthetic CSAP workspace served by a local Rapid Pro-compatible server."""
