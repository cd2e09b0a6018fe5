"""The one exception users see: a one-line message, printed by the CLI without a traceback."""


class TinyBNNError(Exception):
    """A problem with the user's input (model, data, option) that has a one-line explanation."""


class ModelError(TinyBNNError):
    """A model that tinybnn cannot train, save or compile as given."""


def one_line(e: BaseException | str, first_sentence: bool = False) -> str:
    """A message on one line (messages from torch, numpy or a compiler may span several);
    an exception without one gives its type's name. With `first_sentence`, only its start
    (at most 120 characters), for messages that would go on about internals."""
    text = " ".join(str(e).split()) or (type(e).__name__ if isinstance(e, BaseException) else "")
    return text.split(". ")[0][:120] if first_sentence else text
