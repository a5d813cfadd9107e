using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Publication;

/// <summary>
/// One publication as every subscriber is sent it: encoded once, whatever the number of subscribers.
/// </summary>
/// <param name="Resource">The policy resource, or null for the revocation list.</param>
/// <param name="Version">The list's sequence or the document's version.</param>
/// <param name="Message">The authority message (REVOCATIONS or POLICY) to send.</param>
/// <param name="Since">When it was published (a <see cref="TimeProvider"/> timestamp), for the propagation histogram.</param>
internal sealed record Push(string? Resource, ulong Version, byte[] Message, long Since)
{
    public static Push For(SignedRevocationList list, long since) =>
        new(null, list.List.Sequence, new AuthorityMessage(AuthorityMessageType.Revocations, 0, list.Encode()).Encode(), since);

    public static Push For(SignedPolicyDocument document, long since) =>
        new(document.Document.Resource, document.Document.Version, new AuthorityMessage(AuthorityMessageType.Policy, 0, document.Encode()).Encode(), since);
}
