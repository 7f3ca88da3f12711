"""The kiosk's Kivy screens. Importing this package does not open a window (``kiosk.ui.bootstrap`` does)."""
