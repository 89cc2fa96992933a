# Stub of the compiled module built from src/_cpu.pyx: which SIMD levels this CPU runs.

LEVELS: tuple[str, str, str]

def supported_levels() -> tuple[str, ...]: ...
