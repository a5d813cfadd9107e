using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Benchmarks;

/// <summary>
/// An authority and a 3-hop delegation under it, made once: the authority issues a root credential to an
/// orchestrator, which delegates to a sub-agent, which delegates to a sub-sub-agent. The verifier trusts the
/// authority and holds a signed revocation list of <see cref="RevokedCount"/> other credentials, so every link
/// is really looked up. All on a <see cref="FixedTimeProvider"/>.
/// </summary>
internal sealed class CredentialFixture : IDisposable
{
    /// <summary>Revoked credential ids in the authority's list (none of them in the chain).</summary>
    public const int RevokedCount = 100;

    private readonly List<InMemorySigner> _signers = [];

    private CredentialFixture()
    {
    }

    public FixedTimeProvider Time { get; } = FixedTimeProvider.Default;

    public AgentIdentity Authority { get; private set; } = null!;

    public AgentIdentity Orchestrator { get; private set; } = null!;

    public AgentIdentity SubAgent { get; private set; } = null!;

    public AgentIdentity SubSubAgent { get; private set; } = null!;

    /// <summary>Root (authority to orchestrator), then orchestrator to sub-agent, then sub-agent to sub-sub-agent.</summary>
    public CredentialChain Chain { get; private set; } = null!;

    public TrustAnchors Anchors { get; private set; } = null!;

    public RevocationRegistry Revocations { get; } = new();

    public CredentialVerifier Verifier { get; private set; } = null!;

    public static async Task<CredentialFixture> CreateAsync()
    {
        var fixture = new CredentialFixture();
        try
        {
            await fixture.BuildAsync().ConfigureAwait(false);
            return fixture;
        }
        catch
        {
            fixture.Dispose();
            throw;
        }
    }

    /// <summary>A new identity whose signer this fixture owns.</summary>
    public async Task<AgentIdentity> CreateIdentityAsync()
    {
        var signer = InMemorySigner.Generate();
        _signers.Add(signer);
        return await AgentIdentity.CreateAsync(signer, Time).ConfigureAwait(false);
    }

    public void Dispose()
    {
        foreach (var signer in _signers)
        {
            signer.Dispose();
        }
    }

    private async Task BuildAsync()
    {
        Authority = await CreateIdentityAsync().ConfigureAwait(false);
        Orchestrator = await CreateIdentityAsync().ConfigureAwait(false);
        SubAgent = await CreateIdentityAsync().ConfigureAwait(false);
        SubSubAgent = await CreateIdentityAsync().ConfigureAwait(false);

        var now = Time.GetUtcNow();
        var root = await CredentialIssuer.IssueAsync(
            Authority,
            Orchestrator.Identifier,
            Principal.Parse("user:alice@example.com"),
            AttributeSet.Parse(["role=billing", "env=staging", "env=prod", "region=eu"]),
            now,
            now.AddDays(1),
            maxDelegationDepth: 2).ConfigureAwait(false);
        var second = await CredentialIssuer.DelegateAsync(
            Orchestrator,
            root,
            SubAgent.Identifier,
            AttributeSet.Parse(["role=billing", "env=staging", "env=prod"]),
            now,
            now.AddHours(12),
            maxDelegationDepth: 1).ConfigureAwait(false);
        Chain = await CredentialIssuer.DelegateAsync(
            SubAgent,
            second,
            SubSubAgent.Identifier,
            AttributeSet.Parse(["role=billing", "env=prod"]),
            now,
            now.AddHours(1),
            maxDelegationDepth: 0).ConfigureAwait(false);

        Anchors = new TrustAnchors().Trust(Authority.Verified);
        var revoked = Enumerable.Range(0, RevokedCount).Select(_ => RevocationEntry.ForCredential(Credential.NewId()));
        var list = await SignedRevocationList.SignAsync(new RevocationList(Authority.Identifier, 1, now, revoked), Authority).ConfigureAwait(false);
        if (Revocations.Merge(list, Authority.Verified) != RevocationMergeResult.Accepted)
        {
            throw new InvalidOperationException("The revocation list was not accepted.");
        }

        Verifier = new CredentialVerifier(Anchors, Revocations, Time);
    }
}
