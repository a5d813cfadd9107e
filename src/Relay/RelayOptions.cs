using System.ComponentModel.DataAnnotations;
using System.Net;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay;

/// <summary>
/// Everything an operator can set, bound from the "Relay" configuration section (appsettings.json, environment
/// variables <c>Relay__Name</c>, command line <c>--Relay:Name</c>). Every limit has one name, one default and one
/// line of why; docs/protocol.md §9.5 lists the same names.
/// </summary>
public sealed class RelayOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Relay";

    /// <summary>This relay's name in addresses (<c>name@relay</c>) and in relay-to-relay links.</summary>
    [Required]
    public string Name { get; set; } = "relay";

    /// <summary>Where agents and peer relays connect (TCP). Loopback by default: exposing a relay is a decision.</summary>
    [Required]
    public string Endpoint { get; set; } = "127.0.0.1:7300";

    /// <summary>Where <c>/healthz</c> and <c>/metrics</c> are served (HTTP), apart from the hop port; empty to disable.</summary>
    public string MetricsEndpoint { get; set; } = "127.0.0.1:7301";

    /// <summary>
    /// The admission policy (docs/protocol.md §7) every hop must satisfy. The default admits any identity that
    /// presents a credential from a trusted authority: deny by default, vouched-for by configuration.
    /// </summary>
    [Required]
    public string Admission { get; set; } = "peer.chain_length >= 1";

    /// <summary>Peer relays (§9.6).</summary>
    public IList<RelayPeerOptions> Peers { get; } = [];

    /// <summary>The authority this relay subscribes to for revocations and its admission policy (docs/protocol.md §10.4); off when its endpoint is empty.</summary>
    public RelayAuthorityOptions Authority { get; set; } = new();

    /// <summary>Total hops; bounds memory for hop state.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Hops still in the handshake; a flood is refused by closing the socket before any cryptography.</summary>
    [Range(1, 100_000)]
    public int MaxPendingHandshakes { get; set; } = 256;

    /// <summary>Concurrent hops from one remote IP address, checked before any cryptography.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnectionsPerAddress { get; set; } = 64;

    /// <summary>Hops of one identity, listening or not.</summary>
    [Range(1, 10_000)]
    public int MaxConnectionsPerIdentity { get; set; } = 8;

    /// <summary>Names one hop may register.</summary>
    [Range(0, RelayLimits.MaxNamesInHello)]
    public int MaxNamesPerConnection { get; set; } = 16;

    /// <summary>Live circuits on one hop.</summary>
    [Range(1, 1_000_000)]
    public int MaxCircuitsPerConnection { get; set; } = 1024;

    /// <summary>Circuits one hop has opened that are not answered yet; more are refused with LimitExceeded.</summary>
    [Range(1, 100_000)]
    public int MaxPendingOpensPerConnection { get; set; } = 64;

    /// <summary>Largest DATA body; with the header it bounds one frame's buffer.</summary>
    [Range(1024, 1 << 20)]
    public int MaxDataLength { get; set; } = 65536;

    /// <summary>
    /// The most bytes in flight per circuit direction a circuit may ask for: the most the relay buffers per circuit
    /// direction. At least one secure-channel frame (65,537 bytes), or an end-to-end channel could never receive a whole record.
    /// </summary>
    [Range(65537, 64 << 20)]
    public int MaxCircuitWindow { get; set; } = 1 << 20;

    /// <summary>Bytes queued toward one hop; past it the hop is cut (SlowReader). At least 1 MiB: a few full frames must always fit.</summary>
    [Range(1 << 20, long.MaxValue)]
    public long MaxQueuedBytesPerConnection { get; set; } = 32L << 20;

    /// <summary>A hop whose queued frames make no progress this long is cut (SlowReader).</summary>
    public TimeSpan SendStallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The Noise handshake plus HELLO.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Nothing received on a hop for this long ends it (keepalives flow every quarter of it).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>An OPEN the target does not answer within this is refused.</summary>
    public TimeSpan OpenTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Token bucket on what the relay reads from one hop; over it the relay reads more slowly, never buffers. 0 = unlimited.</summary>
    [Range(0, long.MaxValue)]
    public long BytesPerSecondPerConnection { get; set; } = 64L << 20;

    /// <summary>How long shutdown waits for GOAWAY frames to drain.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest hop message: a DATA frame's header and body, and never less than 32 KiB so the largest HELLO, WELCOME or OPEN fits.</summary>
    public int MaxFrameLength => Math.Max(MaxDataLength + 64, 32 * 1024);

    /// <summary>The parsed hop endpoint (a method, not a property, so validation never evaluates it before checking the text).</summary>
    public IPEndPoint GetHopEndPoint() => IPEndPoint.Parse(Endpoint);
}

/// <summary>The authority a relay subscribes to (docs/protocol.md §10.4).</summary>
public sealed class RelayAuthorityOptions
{
    /// <summary>Where to reach it; empty: no subscription (revocations then come only from files).</summary>
    public string? Endpoint { get; set; }

    /// <summary>The identifier it must prove.</summary>
    public string Identifier { get; set; } = "";

    /// <summary>The resource whose published policy replaces <see cref="RelayOptions.Admission"/> for new hops.</summary>
    public string AdmissionResource { get; set; } = "relay-admission";
}

/// <summary>A peer relay (docs/protocol.md §9.6).</summary>
public sealed class RelayPeerOptions
{
    /// <summary>Its relay name, as used in addresses.</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The identifier it must prove in the hop handshake.</summary>
    [Required]
    public string Identifier { get; set; } = "";

    /// <summary>Where to dial it; leave empty on the side that waits to be dialed.</summary>
    public string? Endpoint { get; set; }
}
