using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Client.Delegation;

/// <summary>What an orchestrator gives a sub-agent it spawns (<see cref="AgentClient.SpawnSubAgentAsync"/>).</summary>
public sealed class SubAgentOptions
{
    /// <summary>The attributes delegated: a subset of those of the chain delegated from (a wider set is refused).</summary>
    public required AttributeSet Attributes { get; init; }

    /// <summary>How long the delegated credential lasts from now; it must end within the parent's (a longer one is refused).</summary>
    public required TimeSpan Lifetime { get; init; }

    /// <summary>The chain to delegate from; defaults to the orchestrator's first credential.</summary>
    public CredentialChain? Parent { get; init; }

    /// <summary>How many further delegations the sub-agent may make. Defaults to 0: it cannot delegate.</summary>
    public int MaxDelegationDepth { get; init; }

    /// <summary>Who may open channels to the sub-agent, and whom it accepts; defaults to the orchestrator's policy.</summary>
    public AccessPolicy? Policy { get; init; }

    /// <summary>Whether the sub-agent accepts incoming channels (registers at the relays); defaults to the orchestrator's setting.</summary>
    public bool? Listen { get; init; }

    /// <summary>Names the sub-agent registers at the relays (each granted by a <c>relay-name</c> attribute it is delegated).</summary>
    public IReadOnlyList<string> Names { get; init; } = [];

    /// <summary>
    /// The authority to register the delegation with, so verifiers that require registered delegations accept it and
    /// the authority can revoke it (and find it under the orchestrator). Null: the delegation is not registered.
    /// </summary>
    public AuthorityClient? Registrar { get; init; }
}

/// <summary>
/// A sub-agent an orchestrator spawned in-process: its own identity (a fresh Ed25519 key that never leaves this
/// process), a narrowed credential delegated by the orchestrator, and a started <see cref="AgentClient"/> on the
/// orchestrator's relays. Its channels show the full chain back to the user it acts for. Disposing it stops it and
/// erases its key; revoking it (<see cref="RevokeAsync"/>) makes every verifier close its channels.
/// </summary>
public sealed class SubAgent : IAsyncDisposable
{
    private readonly InMemorySigner _signer;

    internal SubAgent(AgentClient client, CredentialChain credential, InMemorySigner signer)
    {
        Client = client;
        Credential = credential;
        _signer = signer;
    }

    /// <summary>The sub-agent's client: open and accept channels with it.</summary>
    public AgentClient Client { get; }

    /// <summary>The delegated credential chain it presents (with the authority's receipt when registered).</summary>
    public CredentialChain Credential { get; }

    /// <summary>The sub-agent's identifier.</summary>
    public Identifier Identifier => Client.Identifier;

    /// <summary>
    /// Revokes the delegation at <paramref name="authority"/> (the orchestrator's connection; it may revoke what it
    /// delegated). Once the list reaches them, verifiers close the sub-agent's channels with <c>CredentialRevoked</c>.
    /// </summary>
    /// <returns>The sequence number of the revocation list that carries it.</returns>
    /// <exception cref="AuthorityException">The authority refused (not the caller's to revoke, unavailable, ...).</exception>
    public Task<ulong> RevokeAsync(AuthorityClient authority, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(authority);
        return authority.RevokeAsync(RevocationEntry.ForCredential(Credential.Leaf.Credential.Id), reason, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync().ConfigureAwait(false);
        _signer.Dispose();
    }

    internal static async Task<SubAgent> SpawnAsync(AgentClient orchestrator, SubAgentOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Lifetime, TimeSpan.Zero, nameof(options));
        var held = orchestrator.Credentials;
        var parent = options.Parent ?? (held.Count > 0 ? held[0] : throw new InvalidOperationException("The orchestrator holds no credential to delegate from."));
        var settings = orchestrator.Options;
        var signer = InMemorySigner.Generate();
        AgentClient? client = null;
        try
        {
            var identity = await AgentIdentity.CreateAsync(signer, settings.TimeProvider, cancellationToken).ConfigureAwait(false);
            var now = settings.TimeProvider.GetUtcNow();
            var chain = await CredentialIssuer.DelegateAsync(settings.Identity, parent, identity.Identifier, options.Attributes, now, now + options.Lifetime, options.MaxDelegationDepth, cancellationToken).ConfigureAwait(false);
            if (options.Registrar is { } registrar)
            {
                chain = await registrar.RegisterDelegationAsync(chain, cancellationToken).ConfigureAwait(false);
            }

            // The sub-agent shares the orchestrator's trust, revocations (a revocation either learns of reaches both),
            // relays and settings; only its identity, credential, names and policy are its own.
            client = new AgentClient(new AgentClientOptions
            {
                Identity = identity,
                Anchors = settings.Anchors,
                Credentials = [chain],
                Revocations = settings.Revocations,
                Policy = options.Policy ?? settings.Policy,
                Relays = settings.Relays,
                Names = options.Names,
                Listen = options.Listen ?? settings.Listen,
                FirstReconnectBackoff = settings.FirstReconnectBackoff,
                MaxReconnectBackoff = settings.MaxReconnectBackoff,
                DefaultRequestTimeout = settings.DefaultRequestTimeout,
                SerializerOptions = settings.SerializerOptions,
                MeterFactory = settings.MeterFactory,
                Events = settings.Events,
                TimeProvider = settings.TimeProvider,
                LoggerFactory = settings.LoggerFactory,
            });
            if (settings.Relays.Count > 0)
            {
                await client.StartAsync(cancellationToken).ConfigureAwait(false);
            }

            return new SubAgent(client, chain, signer);
        }
        catch
        {
            if (client is not null)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }

            signer.Dispose();
            throw;
        }
    }
}
