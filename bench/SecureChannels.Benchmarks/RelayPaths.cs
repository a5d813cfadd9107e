using SecureChannels.Protocol.Channel;

namespace SecureChannels.Benchmarks;

/// <summary>One end-to-end secure channel between two agents, named after what carries it.</summary>
internal sealed record ChannelPath(string Name, SecureChannel Initiator, SecureChannel Responder);

/// <summary>
/// The same end-to-end secure channel between two agents of <see cref="RelayPeers"/>, opened over each path the relay is
/// compared on: a direct loopback TCP connection, the plain <see cref="TcpForwarder"/>, a relay in this process (hops and
/// a circuit, the agents' default 256 KiB circuit window), and the same relay with 1 MiB windows. The channels belong to
/// the <see cref="RelayPeers"/>; this owns the forwarder.
/// </summary>
internal sealed class RelayPaths : IAsyncDisposable
{
    private readonly TcpForwarder _forwarder;

    private RelayPaths(ChannelPath direct, ChannelPath forwarded, ChannelPath relayed, ChannelPath wideRelayed, TcpForwarder forwarder)
    {
        (Direct, Forwarded, Relayed, WideRelayed, _forwarder) = (direct, forwarded, relayed, wideRelayed, forwarder);
    }

    public ChannelPath Direct { get; }

    public ChannelPath Forwarded { get; }

    public ChannelPath Relayed { get; }

    /// <summary>Through the same relay with both agents announcing the relay's largest circuit window (1 MiB).</summary>
    public ChannelPath WideRelayed { get; }

    public static async Task<RelayPaths> OpenAsync(RelayPeers peers)
    {
        var a = await peers.CreateAgentAsync().ConfigureAwait(false);
        var b = await peers.CreateAgentAsync().ConfigureAwait(false);

        var (directClient, directServer, _) = await LoopbackTcp.PairAsync(throughForwarder: false).ConfigureAwait(false);
        var direct = await peers.ChannelAsync(a, LoopbackTcp.Pipe(directClient), b, LoopbackTcp.Pipe(directServer)).ConfigureAwait(false);

        var (forwardedClient, forwardedServer, forwarder) = await LoopbackTcp.PairAsync(throughForwarder: true).ConfigureAwait(false);
        var forwarded = await peers.ChannelAsync(a, LoopbackTcp.Pipe(forwardedClient), b, LoopbackTcp.Pipe(forwardedServer)).ConfigureAwait(false);

        var relay = await peers.StartRelayAsync().ConfigureAwait(false);
        var linkA = await peers.LinkAsync(a, relay.HopEndPoint!, relay.Identifier, listen: false).ConfigureAwait(false);
        var linkB = await peers.LinkAsync(b, relay.HopEndPoint!, relay.Identifier, listen: true).ConfigureAwait(false);
        var (opened, accepted) = await RelayPeers.CircuitAsync(linkA, linkB, b).ConfigureAwait(false);
        var relayed = await peers.ChannelAsync(a, opened, b, accepted).ConfigureAwait(false);

        // To a third agent: a second listening hop of B would take B's address (newest wins) and reset the circuit above.
        var c = await peers.CreateAgentAsync().ConfigureAwait(false);
        var wideA = await peers.LinkAsync(a, relay.HopEndPoint!, relay.Identifier, listen: false, window: 1 << 20).ConfigureAwait(false);
        var wideC = await peers.LinkAsync(c, relay.HopEndPoint!, relay.Identifier, listen: true, window: 1 << 20).ConfigureAwait(false);
        (opened, accepted) = await RelayPeers.CircuitAsync(wideA, wideC, c).ConfigureAwait(false);
        var wide = await peers.ChannelAsync(a, opened, c, accepted).ConfigureAwait(false);

        return new RelayPaths(
            new("direct", direct.Initiator, direct.Responder),
            new("forwarder", forwarded.Initiator, forwarded.Responder),
            new("relay", relayed.Initiator, relayed.Responder),
            new("relay-1MiB", wide.Initiator, wide.Responder),
            forwarder!);
    }

    public ValueTask DisposeAsync() => _forwarder.DisposeAsync();
}
