"""The one exception users see: a one-line message, printed by the CLI without a traceback."""


class TinyBNNError(Exception):
    """A problem with the user's input (model, data, option) that has a one-line explanation."""


class ModelError(TinyBNNError):
    """A model that tinybnn cannot train, save or compile as given."""
