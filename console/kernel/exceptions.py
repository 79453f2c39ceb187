class DomainError(Exception):
    """A business rule said no. `message` is shown to staff as it is."""

    def __init__(self, message: str = ""):
        super().__init__(message or self.__doc__)
        self.message = message or (self.__doc__ or "").strip()
