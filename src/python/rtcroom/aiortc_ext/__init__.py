"""The one place that reaches into aiortc internals; each module names what it relies on."""
