using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Tests.Identity;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>
/// One authority trusted by one verifier, a fake clock and a revocation registry, plus helpers to issue, delegate
/// and hand-build credential chains (hand-built links bypass <see cref="CredentialIssuer"/>'s own checks).
/// </summary>
internal sealed class CredentialWorld
{
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(8);

    private CredentialWorld(FakeTimeProvider time, AgentIdentity authority)
    {
        Time = time;
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority.Verified);
        Verifier = new CredentialVerifier(Anchors, Revocations, time);
    }

    public FakeTimeProvider Time { get; }

    public AgentIdentity Authority { get; }

    public TrustAnchors Anchors { get; }

    public RevocationRegistry Revocations { get; } = new();

    public CredentialVerifier Verifier { get; }

    public DateTimeOffset Now => Time.GetUtcNow();

    public static readonly Principal Alice = Principal.Parse("user:alice@example.com");

    public static readonly string[] DefaultAttributes = ["env=prod", "env=staging", "role=billing", "role=support"];

    public static async Task<CredentialWorld> CreateAsync()
    {
        var time = IdentityTestKit.NewClock();
        return new CredentialWorld(time, await IdentityTestKit.NewIdentityAsync(time));
    }

    public Task<AgentIdentity> NewAgentAsync() => IdentityTestKit.NewIdentityAsync(Time);

    public static AttributeSet Attributes(params string[] pairs) => AttributeSet.Parse(pairs);

    /// <summary>A root credential from <see cref="Authority"/> (or <paramref name="issuer"/>) valid from now for <see cref="DefaultLifetime"/>.</summary>
    public Task<CredentialChain> IssueAsync(
        AgentIdentity subject,
        string[]? attributes = null,
        Principal? principal = null,
        int maxDelegationDepth = 3,
        TimeSpan? lifetime = null,
        DateTimeOffset? notBefore = null,
        AgentIdentity? issuer = null)
    {
        var start = notBefore ?? Now;
        return CredentialIssuer.IssueAsync(
            issuer ?? Authority,
            subject.Identifier,
            principal ?? Alice,
            AttributeSet.Parse(attributes ?? DefaultAttributes),
            start,
            start + (lifetime ?? DefaultLifetime),
            maxDelegationDepth);
    }

    /// <summary>Delegates from <paramref name="held"/> (held by <paramref name="holder"/>) to <paramref name="subject"/>, by default with the parent's attributes and validity and one hop fewer.</summary>
    public static Task<CredentialChain> DelegateAsync(
        AgentIdentity holder,
        CredentialChain held,
        AgentIdentity subject,
        string[]? attributes = null,
        int? maxDelegationDepth = null,
        DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null)
    {
        var parent = held.Leaf.Credential;
        return CredentialIssuer.DelegateAsync(
            holder,
            held,
            subject.Identifier,
            attributes is null ? parent.Attributes : AttributeSet.Parse(attributes),
            notBefore ?? parent.NotBefore,
            notAfter ?? parent.NotAfter,
            maxDelegationDepth ?? Math.Max(parent.MaxDelegationDepth - 1, 0));
    }

    /// <summary>A child of <paramref name="parent"/> built by hand, each field defaulting to a valid narrowing.</summary>
    public static Credential Child(
        SignedCredential parent,
        Identifier issuer,
        Identifier subject,
        Principal? principal = null,
        AttributeSet? attributes = null,
        DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null,
        int? maxDelegationDepth = null,
        ParentReference? parentReference = null,
        byte[]? id = null)
    {
        var p = parent.Credential;
        return new Credential(
            id ?? Credential.NewId(),
            issuer,
            subject,
            principal ?? p.Principal,
            attributes ?? p.Attributes,
            notBefore ?? p.NotBefore,
            notAfter ?? p.NotAfter,
            maxDelegationDepth ?? Math.Max(p.MaxDelegationDepth - 1, 0),
            parentReference ?? new ParentReference(p.Id, parent.SignedHash));
    }

    /// <summary>Signs <paramref name="credential"/> with <paramref name="issuer"/>'s current key, naming its current change.</summary>
    public static async Task<SignedCredential> SignAsync(AgentIdentity issuer, Credential credential, string domain = SignatureDomain.Credential)
    {
        var signature = await SignatureDomain.SignAsync(issuer.Signer, domain, credential.Encoded);
        return new SignedCredential(credential, issuer.Verified.Current.ChangeHash, signature);
    }

    /// <summary>Appends <paramref name="child"/>, signed by <paramref name="holder"/>, to <paramref name="held"/>, bypassing the issuer's checks.</summary>
    public static async Task<CredentialChain> AppendAsync(CredentialChain held, AgentIdentity holder, Credential child, IdentityHistory? issuerHistory = null) =>
        new([.. held.Credentials, await SignAsync(holder, child)], [.. held.IssuerHistories, issuerHistory ?? holder.History]);

    /// <summary>The chain with link <paramref name="index"/> replaced.</summary>
    public static CredentialChain Replace(CredentialChain chain, int index, SignedCredential link)
    {
        var links = chain.Credentials.ToArray();
        links[index] = link;
        return new CredentialChain(links, chain.IssuerHistories);
    }

    public CredentialException VerifyFails(CredentialChain chain, CredentialErrorKind expected, Identifier? presenter = null)
    {
        var error = Assert.Throws<CredentialException>(() => Verifier.Verify(chain, presenter));
        Assert.Equal(expected, error.Kind);
        return error;
    }

    /// <summary>Signs a revocation list of <paramref name="issuer"/> (the authority by default).</summary>
    public async Task<SignedRevocationList> RevocationListAsync(ulong sequence, IEnumerable<RevocationEntry> entries, AgentIdentity? issuer = null)
    {
        var authority = issuer ?? Authority;
        return await SignedRevocationList.SignAsync(new RevocationList(authority.Identifier, sequence, Now, entries), authority);
    }
}
