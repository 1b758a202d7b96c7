"""The Inspector page: ``page`` (NiceGUI) and its pure view model."""
