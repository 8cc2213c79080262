"""sfncopy: what runs on the user's machine (the CLI, execution tracking, the demo, the embedded emulator)."""
