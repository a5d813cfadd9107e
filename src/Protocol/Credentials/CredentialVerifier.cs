using System.Collections.Immutable;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Credentials;

/// <summary>One hop of a verified chain: who granted authority to whom, by which credential.</summary>
public sealed record DelegationHop(Identifier Issuer, Identifier Subject, string CredentialId);

/// <summary>
/// What a verified chain says: who acts (<see cref="Subject"/>), on whose behalf (<see cref="Principal"/>),
/// with what authority (<see cref="Attributes"/>, already limited to what the root authority is trusted
/// for), through which hops, and until when.
/// </summary>
public sealed record VerifiedCredential(
    Identifier Subject,
    Principal Principal,
    Identifier Authority,
    ImmutableArray<DelegationHop> Hops,
    AttributeSet Attributes,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter)
{
    /// <summary>Links in the chain: 1 for a credential straight from the authority.</summary>
    public int ChainLength => Hops.Length;
}

/// <summary>Options of a <see cref="CredentialVerifier"/>.</summary>
public sealed record CredentialVerifierOptions
{
    private readonly TimeSpan _clockSkew = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How far apart the issuer's and the verifier's clocks may be: validity periods are widened by this much
    /// at both ends. Defaults to 60 seconds (Ockam's value: enough for NTP-synchronised hosts, too little to
    /// matter against credential lifetimes of hours). Must be between zero and one hour.
    /// </summary>
    public TimeSpan ClockSkew
    {
        get => _clockSkew;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, TimeSpan.FromHours(1));
            _clockSkew = value;
        }
    }

    /// <summary>
    /// Accept a delegated link only when the chain carries the root authority's receipt for it: the delegation is
    /// recorded in the authority's registry, where it can be queried and revoked with the chain above it.
    /// Defaults to false (any correctly narrowing delegation is accepted).
    /// </summary>
    public bool RequireRegisteredDelegations { get; init; }

    /// <summary>
    /// Where the verifier remembers what verified (see <see cref="VerificationCache"/>). Null (the default): each
    /// verifier makes its own of <see cref="VerificationCache.DefaultCapacity"/> entries. One cache may be shared by
    /// several verifiers: a chain's key covers its trust anchor's history and <see cref="RequireRegisteredDelegations"/>,
    /// so no result carries over between verifiers that would judge it differently.
    /// </summary>
    public VerificationCache? Cache { get; init; }
}

/// <summary>
/// Verifies credential chains against trusted authorities, the newest revocation lists and the clock. A chain
/// is accepted only if every link is signed by its issuer, every delegated link narrows its parent, nothing
/// is expired or revoked, and the root issuer is trusted. Thread-safe.
/// </summary>
public sealed class CredentialVerifier(TrustAnchors anchors, RevocationRegistry revocations, TimeProvider timeProvider, CredentialVerifierOptions? options = null)
{
    private readonly CredentialVerifierOptions _options = options ?? new();

    // Chain objects whose signatures, issuer histories, narrowing and receipts held, each with the trust anchor history
    // they held under. A chain is immutable, so re-checking it (on every new revocation list, for every open channel)
    // needs only what can change: the anchor, the clock and the revocation lists. Weak keys: a chain no channel holds
    // any more is forgotten. Unlike Cache this is never evicted, so an open channel's re-checks never verify signatures
    // again however many peers pass through the cache.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<CredentialChain, IdentityHistory> _checked = [];

    /// <summary>
    /// What this verifier remembers having verified, by exact bytes: chains here, and the peer's identity history and
    /// key attestation in the channel handshake. Hits and misses are counted on it.
    /// </summary>
    public VerificationCache Cache { get; } = options?.Cache ?? new VerificationCache();

    /// <summary>
    /// Verifies <paramref name="chain"/>, presented by <paramref name="presenter"/> when given. Checks 2–5 and 8 of
    /// docs/protocol.md §6 (signatures, issuer histories, narrowing, receipts) are skipped for a chain that passed
    /// them before under the same trust anchor history; the anchor, validity, revocation and presenter are checked
    /// every time.
    /// </summary>
    /// <exception cref="CredentialException">Why the chain must not be trusted, with the link that failed.</exception>
    public VerifiedCredential Verify(CredentialChain chain, Identifier? presenter = null) => Verify(chain, presenter, Cache);

    /// <summary><see cref="Verify(CredentialChain, Identifier?)"/>, remembering a chain that verified in <paramref name="memory"/> (a handshake's, which keeps it until the peer is accepted).</summary>
    internal VerifiedCredential Verify(CredentialChain chain, Identifier? presenter, IVerificationMemory memory)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var anchor = FindAnchor(chain);
        var anchorHistory = anchor.Identity.History;
        if (_checked.TryGetValue(chain, out var checkedUnder) && ReferenceEquals(checkedUnder, anchorHistory))
        {
            return Check(chain, anchor, presenter, checkSignatures: false, memory);
        }

        // Everything skipped on a hit is a pure function of the chain's bytes, the anchor's history and the one option
        // that adds a check; those three are the key.
        var key = VerificationKey.Derive(VerifiedKind.CredentialChain, chain.Encoded, anchorHistory.Encoded, _options.RequireRegisteredDelegations ? [1] : [0]);
        var known = memory.Contains(key);
        var verified = Check(chain, anchor, presenter, checkSignatures: !known, memory);
        if (!known)
        {
            memory.Add(key);
        }

        _checked.AddOrUpdate(chain, anchorHistory);
        return verified;
    }

    /// <summary>
    /// True while <paramref name="chain"/> is still good at the current time, under the newest lists and the current
    /// trust anchors: the check an open channel repeats when the clock passes its expiry or a revocation list arrives.
    /// A chain verified before (the channel's own) repeats only those checks, not its signatures.
    /// </summary>
    public bool IsStillValid(CredentialChain chain, out CredentialException? reason)
    {
        ArgumentNullException.ThrowIfNull(chain);
        try
        {
            Verify(chain);
            reason = null;
            return true;
        }
        catch (CredentialException e)
        {
            reason = e;
            return false;
        }
    }

    // Check 1 of §6, never skipped: link 0 is a root credential from an authority trusted now.
    private TrustAnchor FindAnchor(CredentialChain chain)
    {
        var root = chain.Credentials[0].Credential;
        if (root.Parent is not null)
        {
            throw new CredentialException(CredentialErrorKind.BrokenChain, "Link 0 claims a parent; a chain starts with a credential from an authority.");
        }

        return anchors.Find(root.Issuer)
            ?? throw new CredentialException(CredentialErrorKind.UntrustedIssuer, $"{root.Issuer} is not a trusted authority.");
    }

    private VerifiedCredential Check(CredentialChain chain, TrustAnchor anchor, Identifier? presenter, bool checkSignatures, IVerificationMemory memory)
    {
        var now = timeProvider.GetUtcNow();
        var root = chain.Credentials[0];
        var authority = anchor.Identity.Identifier;
        CheckLink(root, checkSignatures ? anchor.Identity : null, authority, now, 0);

        var hops = ImmutableArray.CreateBuilder<DelegationHop>(chain.Credentials.Length);
        hops.Add(Hop(root.Credential));
        var notBefore = root.Credential.NotBefore;
        var notAfter = root.Credential.NotAfter;
        for (var i = 1; i < chain.Credentials.Length; i++)
        {
            var link = chain.Credentials[i];
            if (checkSignatures)
            {
                CheckDelegatedLink(chain, i, anchor, authority, now, memory);
            }
            else
            {
                CheckLink(link, null, authority, now, i);
            }

            hops.Add(Hop(link.Credential));
            notBefore = link.Credential.NotBefore > notBefore ? link.Credential.NotBefore : notBefore;
            notAfter = link.Credential.NotAfter < notAfter ? link.Credential.NotAfter : notAfter;
        }

        var leaf = chain.Leaf.Credential;
        if (presenter is { } who && who != leaf.Subject)
        {
            throw new CredentialException(CredentialErrorKind.SubjectMismatch, $"The chain is about {leaf.Subject}, but {who} presented it.");
        }

        return new VerifiedCredential(leaf.Subject, leaf.Principal, authority, hops.MoveToImmutable(), leaf.Attributes.Where(anchor.Covers), notBefore, notAfter);
    }

    private void CheckDelegatedLink(CredentialChain chain, int i, TrustAnchor anchor, Identifier authority, DateTimeOffset now, IVerificationMemory memory)
    {
        var link = chain.Credentials[i];
        Delegation.CheckNarrows(chain.Credentials[i - 1], link.Credential, i);
        VerifiedIdentity issuer;
        try
        {
            issuer = chain.IssuerHistories[i - 1].Verify(memory);
        }
        catch (IdentityException e)
        {
            throw new CredentialException(CredentialErrorKind.MissingIssuerHistory, $"The history of the issuer of link {i} does not verify: {e.Message}", e);
        }

        if (issuer.Identifier != link.Credential.Issuer)
        {
            throw new CredentialException(CredentialErrorKind.MissingIssuerHistory, $"The history given for link {i} is of {issuer.Identifier}, not of its issuer {link.Credential.Issuer}.");
        }

        CheckLink(link, issuer, authority, now, i);
        if (_options.RequireRegisteredDelegations && !chain.Registrations.Any(r => r.Covers(link, anchor.Identity)))
        {
            throw new CredentialException(CredentialErrorKind.Unregistered, $"Link {i} ({link.Credential.IdText}) carries no registration receipt from {authority}.");
        }
    }

    // A null issuer skips the signature: the chain was verified whole before and only its time and revocation can change.
    private void CheckLink(SignedCredential link, VerifiedIdentity? issuer, Identifier authority, DateTimeOffset now, int index)
    {
        var credential = link.Credential;
        if (issuer is not null && (issuer.FindChange(link.IssuerChangeHash)?.PublicKey is not { } key || !SignatureDomain.Verify(key, SignatureDomain.Credential, credential.Encoded, link.Signature)))
        {
            throw new CredentialException(CredentialErrorKind.BadSignature, $"Link {index} ({credential.IdText}) is not signed by its issuer {credential.Issuer}.");
        }

        if (now + _options.ClockSkew < credential.NotBefore)
        {
            throw new CredentialException(CredentialErrorKind.NotYetValid, $"Link {index} ({credential.IdText}) is not valid before {credential.NotBefore:O}.");
        }

        if (now - _options.ClockSkew >= credential.NotAfter)
        {
            throw new CredentialException(CredentialErrorKind.Expired, $"Link {index} ({credential.IdText}) expired at {credential.NotAfter:O}.");
        }

        if (revocations.FindRevocation(authority, credential) is { } entry)
        {
            throw new CredentialException(CredentialErrorKind.Revoked, $"Link {index} ({credential.IdText}) is revoked: {entry}.");
        }
    }

    private static DelegationHop Hop(Credential credential) => new(credential.Issuer, credential.Subject, credential.IdText);
}
