"""Real servers on 127.0.0.1 for the upload tests, started by the tests and stopped by PID."""
