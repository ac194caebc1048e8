"""The notifier's email layer: what an email shows (:mod:`.views`), how it is written
(:mod:`.composer`, with the MIME bytes built in :mod:`.mime` and DKIM-signed by :mod:`.signing`),
and how it is sent (:mod:`.sender`).
"""

from hwcollab_notifier.mail.bounces import BounceAddresses, BounceToken
from hwcollab_notifier.mail.composer import EmailComposer, OutgoingEmail, message_id_for
from hwcollab_notifier.mail.sender import SendOutcome, SmtpSender, SmtpUnavailableError
from hwcollab_notifier.mail.signing import DkimSigner
from hwcollab_notifier.mail.views import OpeningView, Recipient

__all__ = [
    "BounceAddresses",
    "BounceToken",
    "DkimSigner",
    "EmailComposer",
    "OpeningView",
    "OutgoingEmail",
    "Recipient",
    "SendOutcome",
    "SmtpSender",
    "SmtpUnavailableError",
    "message_id_for",
]
