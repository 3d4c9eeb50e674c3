"""Template tags of the console (`{% load locators %}`)."""
