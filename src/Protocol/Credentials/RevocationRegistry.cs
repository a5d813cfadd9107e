using System.Collections.Immutable;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Credentials;

/// <summary>What <see cref="RevocationRegistry.Merge"/> did with a list.</summary>
public enum RevocationMergeResult
{
    /// <summary>The list is newer than the one held and replaced it.</summary>
    Accepted,

    /// <summary>The list is the one held already.</summary>
    AlreadyKnown,

    /// <summary>The list is older than the one held and was ignored: an older list never replaces a newer one.</summary>
    Stale,

    /// <summary>The list has the sequence of the one held but different content: the authority signed two versions. Ignored and reported.</summary>
    Equivocation,
}

/// <summary>
/// The newest revocation list of each authority. A list only ever applies to credential chains rooted at its
/// own issuer, so one authority cannot revoke another's grants. Thread-safe; <see cref="Changed"/> lets open
/// channels re-check their peers when a new list arrives.
/// </summary>
public sealed class RevocationRegistry
{
    private readonly NewestVersions<Identifier, SignedRevocationList> _lists = new();

    /// <summary>Raised after a newer list of the given authority was accepted.</summary>
    public event Action<Identifier>? Changed;

    /// <summary>Verifies <paramref name="list"/> against its issuer's identity and keeps it if it is newer than the one held.</summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.BadSignature"/> when the list is not the issuer's.</exception>
    public RevocationMergeResult Merge(SignedRevocationList list, VerifiedIdentity issuer)
    {
        ArgumentNullException.ThrowIfNull(list);
        list.Verify(issuer);
        var result = _lists.Merge(list.List.Issuer, list, static l => l.List.Sequence, static (a, b) => a.List.Equals(b.List));
        if (result == RevocationMergeResult.Accepted)
        {
            Changed?.Invoke(list.List.Issuer);
        }

        return result;
    }

    /// <summary>The newest list held for <paramref name="authority"/>, to pass on to others; null when none.</summary>
    public SignedRevocationList? Find(Identifier authority) => _lists.Find(authority);

    /// <summary>The entry of <paramref name="authority"/>'s newest list that revokes <paramref name="credential"/>, or null.</summary>
    public RevocationEntry? FindRevocation(Identifier authority, Credential credential) =>
        _lists.Find(authority)?.List.FindRevocation(credential);
}
