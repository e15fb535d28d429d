"""superv: record and control a program's network, pipe and disk I/O."""

__version__ = "0.1.0"
