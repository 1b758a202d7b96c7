"""The Models page: ``page`` (NiceGUI) and its pure view model."""
