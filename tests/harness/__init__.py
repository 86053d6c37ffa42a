"""End-to-end test harness: real Envoy processes, real HTTP backends, a real shoal control plane.

Everything here starts real peers on 127.0.0.1 with ports picked by the kernel, and every
process or thread it starts is stopped again by its owner (context managers, plus an atexit
guard for processes in case a test run is interrupted).
"""
