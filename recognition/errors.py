"""Exceptions raised by the recognition package.

Every message says what went wrong and what the user (or operator) can do about it, because
the web app shows them as they are. Catch ``RecognitionError`` to handle them all.
"""


class RecognitionError(Exception):
    """Base class: something about the input or the models prevents recognition."""


class VideoError(RecognitionError):
    """A video file cannot be used.

    The message is English. ``reason`` names the refusal ("too_long", "no_picture"...) and ``params``
    holds its numbers (JSON values), so that an app can say it in its reader's language instead of
    parsing the English; every refusal raised in recognition.video has one.
    """

    def __init__(self, message: str, /, *, reason: str = "", **params: object) -> None:
        super().__init__(message)
        # Attributes, not arguments: Exception's own pickling (args, then __dict__) keeps them.
        self.reason = reason
        self.params = params


class NotAVideoError(VideoError):
    """The file is not a video OpenCV/FFmpeg can read (a text file, a photo, an audio file)."""


class EmptyVideoError(VideoError):
    """The file is empty, or is a video without a single decodable frame."""


class VideoTruncatedError(VideoError):
    """The file starts like a video but is cut off or damaged (an interrupted upload)."""


class VideoTooLargeError(VideoError):
    """The video claims a resolution or length we refuse to decode."""


class VideoTooLongError(VideoTooLargeError):
    """The video runs longer than the caller's limit (found without decoding all of it)."""


class ImageError(RecognitionError):
    """An image file or array cannot be used."""


class ModelUnavailableError(RecognitionError):
    """A model file or weights cannot be found, downloaded or loaded."""


class IndexFormatError(RecognitionError):
    """A saved index is missing, corrupt, of another format version or of another model.

    The index is a cache of stored embeddings: callers rebuild it when they see this.
    """
