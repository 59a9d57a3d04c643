"""Frame sinks: the virtual camera and the recorder."""
