"""Root test configuration: the real-process fixtures of ``hwcollab_testing``."""

pytest_plugins = ["hwcollab_testing.plugin"]
