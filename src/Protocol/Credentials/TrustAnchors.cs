using System.Collections.Frozen;
using System.Collections.Immutable;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Credentials;

/// <summary>An authority a verifier trusts, optionally only for some attributes.</summary>
/// <param name="Identity">The authority's verified identity (its history gives the keys its credentials may be signed with).</param>
/// <param name="Attributes">The attribute names it is trusted for; null means every attribute.</param>
public sealed record TrustAnchor(VerifiedIdentity Identity, FrozenSet<string>? Attributes)
{
    /// <summary>True when the authority may grant <paramref name="attribute"/>.</summary>
    public bool Covers(string attribute) => Attributes is null || Attributes.Contains(attribute);
}

/// <summary>
/// The authorities a verifier trusts. Thread-safe: a verifier reads a snapshot; adding or updating an
/// authority (for example after it rotated its key) replaces the snapshot.
/// </summary>
public sealed class TrustAnchors
{
    private ImmutableDictionary<Identifier, TrustAnchor> _anchors = ImmutableDictionary<Identifier, TrustAnchor>.Empty;

    /// <summary>The trusted authorities.</summary>
    public IEnumerable<TrustAnchor> All => _anchors.Values;

    /// <summary>Trusts <paramref name="authority"/> for <paramref name="attributes"/> (null: every attribute).</summary>
    public TrustAnchors Trust(VerifiedIdentity authority, IEnumerable<string>? attributes = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        var anchor = new TrustAnchor(authority, attributes?.ToFrozenSet(StringComparer.Ordinal));
        ImmutableInterlocked.AddOrUpdate(ref _anchors, authority.Identifier, anchor, (_, _) => anchor);
        return this;
    }

    /// <summary>
    /// Stops trusting <paramref name="authority"/> (for example after its key leaked): every chain rooted at it is
    /// refused (<see cref="CredentialErrorKind.UntrustedIssuer"/>) the next time it is verified, however often it
    /// verified before. Returns false when the authority was not trusted.
    /// </summary>
    public bool Remove(Identifier authority) => ImmutableInterlocked.TryRemove(ref _anchors, authority, out _);

    /// <summary>
    /// Replaces a trusted authority's history with a newer one (after a key rotation). An older or truncated
    /// history is refused (<see cref="IdentityErrorKind.Stale"/>), and so is a fork (<see cref="IdentityErrorKind.Forked"/>).
    /// </summary>
    /// <exception cref="IdentityException">The history does not verify, is not newer, or is of an authority not trusted here.</exception>
    public void Update(IdentityHistory history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var verified = history.Verify();
        if (!_anchors.TryGetValue(verified.Identifier, out var known))
        {
            throw new IdentityException(IdentityErrorKind.IdentifierMismatch, $"{verified.Identifier} is not a trusted authority.");
        }

        switch (history.CompareTo(known.Identity.History))
        {
            case HistoryComparison.Forked:
                throw new IdentityException(IdentityErrorKind.Forked, $"The history of {verified.Identifier} forks from the one trusted.");
            case HistoryComparison.Older:
                throw new IdentityException(IdentityErrorKind.Stale, $"The history of {verified.Identifier} is older than the one trusted.");
            case HistoryComparison.Newer:
                ImmutableInterlocked.AddOrUpdate(ref _anchors, verified.Identifier, known with { Identity = verified }, (_, current) => current with { Identity = verified });
                break;
            default:
                break;
        }
    }

    /// <summary>The anchor for <paramref name="authority"/>, or null when it is not trusted.</summary>
    public TrustAnchor? Find(Identifier authority) => _anchors.GetValueOrDefault(authority);
}
