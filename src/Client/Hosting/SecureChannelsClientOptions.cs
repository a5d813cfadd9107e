using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Client.Hosting;

/// <summary>
/// An agent's settings for a .NET host. Everything that is text binds from configuration (section
/// <see cref="Section"/> by convention: appsettings.json, environment variables <c>SecureChannels__Client__Names__0</c>,
/// command line <c>--SecureChannels:Client:Policy</c>); the identity, trust anchors, credentials and revocations are
/// objects holding keys and signatures, so they are set in code. Checked when the host starts; see
/// <see cref="ServiceCollectionExtensions.AddSecureChannelsClient(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{SecureChannelsClientOptions}?)"/>.
/// </summary>
public sealed class SecureChannelsClientOptions
{
    /// <summary>The configuration section by convention.</summary>
    public const string Section = "SecureChannels:Client";

    /// <summary>The relays the agent keeps hops to.</summary>
    public IList<PinnedEndpointOptions> Relays { get; } = [];

    /// <summary>Names to register at the relays (each granted by a credential's <c>relay-name</c> attribute).</summary>
    public IList<string> Names { get; } = [];

    /// <summary>Whether the agent accepts incoming channels (registers at the relays). Defaults to true.</summary>
    public bool Listen { get; set; } = true;

    /// <summary>
    /// The access policy's text (docs/protocol.md §7): who may open a channel to this agent, and whom it accepts when
    /// it opens one. Null or blank: nobody (deny by default).
    /// </summary>
    public string? Policy { get; set; }

    /// <summary>First reconnection back-off after a hop is lost; it doubles, jittered, up to <see cref="MaxReconnectBackoff"/>. Defaults to 1 s.</summary>
    public TimeSpan FirstReconnectBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest reconnection back-off (at most a day). Defaults to 30 s.</summary>
    public TimeSpan MaxReconnectBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a request waits for its response unless told otherwise (1 ms to a day). Defaults to 30 s.</summary>
    public TimeSpan DefaultRequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many incoming channels the registered <see cref="IAgentChannelHandler"/> serves at once; more wait in the
    /// client's bounded queue of channels not yet accepted (and past it are refused), so a burst never grows memory
    /// without bound. Defaults to 64.
    /// </summary>
    public int MaxConcurrentChannels { get; set; } = 64;

    /// <summary>
    /// The authority the agent keeps in step with while the host runs (<see cref="AgentClient.KeepUpWithAuthorityAsync"/>):
    /// its revocation lists, and the refresh of the agent's own credential. Null: none (revocations and expiry are then
    /// the application's business).
    /// </summary>
    public PinnedEndpointOptions? Authority { get; set; }

    /// <summary>
    /// A one-time enrollment ticket (<c>sct1_…</c>) to redeem at <see cref="Authority"/> when the host starts, before
    /// the hops: the credential received is what the agent presents. Keep it out of files (an environment variable or
    /// a secret store); it is never logged. Ignored when <see cref="Credentials"/> already holds a credential.
    /// </summary>
    public string? EnrollmentTicket { get; set; }

    /// <summary>The agent's identity (code only: it holds the signer). Required.</summary>
    public AgentIdentity? Identity { get; set; }

    /// <summary>The authorities whose credentials the agent accepts from peers and relays (code only). Required.</summary>
    public TrustAnchors? Anchors { get; set; }

    /// <summary>The credential chains the agent presents (code only); replace them later with <see cref="AgentClient.UpdateCredentialsAsync"/>.</summary>
    public IReadOnlyList<CredentialChain> Credentials { get; set; } = [];

    /// <summary>The revocation lists the agent honours (code only); null: a registry of its own, reachable as <see cref="AgentClientOptions.Revocations"/>.</summary>
    public RevocationRegistry? Revocations { get; set; }

    /// <summary>How typed messages are serialized (code only); null: <see cref="AgentClientOptions.SerializerOptions"/>'s default, MessagePack's standard resolvers with <c>UntrustedData</c>.</summary>
    public MessagePack.MessagePackSerializerOptions? SerializerOptions { get; set; }

    /// <summary>The audit events of the agent's channels (code only; see <see cref="AgentClientOptions.Events"/>).</summary>
    public Action<Protocol.Channel.ChannelEvent>? Events { get; set; }

    /// <summary>The client's options from these, which must be valid (the host validates them at start).</summary>
    internal AgentClientOptions ToAgentClientOptions(ILoggerFactory loggerFactory, TimeProvider timeProvider, IMeterFactory? meterFactory) => new()
    {
        Identity = Identity ?? throw new InvalidOperationException("SecureChannelsClientOptions.Identity is not set."),
        Anchors = Anchors ?? throw new InvalidOperationException("SecureChannelsClientOptions.Anchors is not set."),
        Credentials = Credentials,
        Revocations = Revocations ?? new RevocationRegistry(),
        Policy = string.IsNullOrWhiteSpace(Policy) ? null : AccessPolicy.Parse(Policy),
        Relays = [.. Relays.Select(static r => r.ToRelayEndpoint())],
        Names = [.. Names],
        Listen = Listen,
        FirstReconnectBackoff = FirstReconnectBackoff,
        MaxReconnectBackoff = MaxReconnectBackoff,
        DefaultRequestTimeout = DefaultRequestTimeout,
        SerializerOptions = SerializerOptions ?? AgentClientOptions.DefaultSerializerOptions,
        Events = Events,
        LoggerFactory = loggerFactory,
        TimeProvider = timeProvider,
        MeterFactory = meterFactory,
    };
}

/// <summary>A relay or an authority in configuration: <c>{ "EndPoint": "127.0.0.1:7300", "Identifier": "I…" }</c>.</summary>
public sealed class PinnedEndpointOptions
{
    /// <summary>Its endpoint, an IP address and port such as <c>127.0.0.1:7300</c> or <c>[::1]:7300</c>.</summary>
    public string EndPoint { get; set; } = "";

    /// <summary>Its identifier (<c>I</c> followed by 64 hex digits), pinned in the handshake.</summary>
    public string Identifier { get; set; } = "";

    internal RelayEndpoint ToRelayEndpoint() => new(IPEndPoint.Parse(EndPoint), Protocol.Identity.Identifier.Parse(Identifier));

    internal (IPEndPoint EndPoint, Identifier Identifier) Parse() => (IPEndPoint.Parse(EndPoint), Protocol.Identity.Identifier.Parse(Identifier));
}
