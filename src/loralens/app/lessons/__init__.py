"""The Lessons page: ``page`` (NiceGUI) and its pure view model."""
