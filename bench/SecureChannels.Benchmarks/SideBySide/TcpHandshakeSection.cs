using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Wire;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Section 1: complete handshakes per second over loopback TCP, TCP connect included, our channel against TLS 1.3 with
/// mutual certificates; one at a time, then one per core at once.
/// </summary>
internal static class TcpHandshakeSection
{
    public const string Title = "1. Handshakes per second over loopback TCP, connect included";

    private static readonly Goal RatioGoal = Goal.AtLeastTimes(6);

    // Generous: a handshake takes milliseconds; only a hung peer gets near it.
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(CompareReport report, SideBySideSettings settings)
    {
        using var peers = await ChannelPeers.CreateAsync().ConfigureAwait(false);
        using var tls = TlsPeers.Create();
        await CheckAsync(peers, tls).ConfigureAwait(false);

        var table = new MarkdownTable("handshakes in flight", "SecureChannel /s", "TLS 1.3 mutual /s", "ours / TLS", "goal", "verdict");
        foreach (var (mode, loops) in new[] { ("sequential (1 loop)", 1), (Invariant($"concurrent ({Environment.ProcessorCount} loops)"), Environment.ProcessorCount) })
        {
            var ours = new LoopbackHandshakeServer(loops, socket => ServeChannelAsync(peers, socket), endpoint => ConnectChannelAsync(peers, endpoint));
            await using (ours.ConfigureAwait(false))
            {
                var theirs = new LoopbackHandshakeServer(loops, socket => ServeTlsAsync(tls, socket), endpoint => ConnectTlsAsync(tls, endpoint));
                await using (theirs.ConfigureAwait(false))
                {
                    var measured = await AlternatingRounds.MeasureAsync(settings, [new("SecureChannel", ours.RunAsync), new("TLS", theirs.RunAsync)], firstCount: loops).ConfigureAwait(false);
                    var ratio = measured[0].Rate / measured[1].Rate;
                    var shown = Invariant($"{ratio:F2}x");
                    table.Row(mode, Invariant($"{measured[0].Rate:N0}"), Invariant($"{measured[1].Rate:N0}"), shown, RatioGoal.Text, report.Judge($"TCP handshakes, {mode}: ours / TLS", RatioGoal, ratio, shown));
                }
            }
        }

        report.Table(table);
        report.Note(
            "Each handshake: a TCP connect to a listener in this process, both handshakes to completion, both ends disposed. One accept loop per",
            "client loop; each loop serves one connection at a time. SecureChannel: ConnectAsync/AcceptAsync over " + LoopbackTcp.PipeDescription + ",",
            "each side with an identity, an attested channel key and one credential (ChannelPeers), verifying the other's and evaluating its policy;",
            "the initiator returns once the responder's ACCEPT arrived. TLS 1.3: SslStream over NetworkStream, mutual ECDSA P-256 certificates",
            "pinned by thumbprint, no resumption (TlsPeers). Before timing, one connection of each was checked end to end (identities and",
            "handshake hash agree / TLS 1.3 mutual, and messages arrive intact); every timed handshake checks the peer it got.");
    }

    /// <summary>One connection of each kind, checked end to end before anything is timed.</summary>
    private static async Task CheckAsync(ChannelPeers peers, TlsPeers tls)
    {
        var (initiator, responder) = await LoopbackConnections.ChannelAsync(peers).ConfigureAwait(false);
        await using (initiator.ConfigureAwait(false))
        await using (responder.ConfigureAwait(false))
        {
            await ChannelTraffic.CheckDeliveryAsync(initiator, responder, 1024).ConfigureAwait(false);
        }

        var (client, server) = await LoopbackConnections.TlsAsync(tls).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        await using (server.ConfigureAwait(false))
        {
            await FramedStreamTraffic.CheckDeliveryAsync(client, server, 1024).ConfigureAwait(false);
        }
    }

    private static async Task ServeChannelAsync(ChannelPeers peers, Socket socket)
    {
        var pipe = LoopbackTcp.Pipe(socket);
        await using (pipe.ConfigureAwait(false))
        {
            var channel = await SecureChannel.AcceptAsync(pipe, peers.Responder).ConfigureAwait(false);
            await channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task ConnectChannelAsync(ChannelPeers peers, IPEndPoint endpoint)
    {
        var pipe = await SocketPipe.ConnectAsync(endpoint, ConnectTimeout, peers.Initiator.TimeProvider).ConfigureAwait(false);
        await using (pipe.ConfigureAwait(false))
        {
            var channel = await SecureChannel.ConnectAsync(pipe, peers.Initiator).ConfigureAwait(false);
            var peer = channel.Peer.Identifier;
            await channel.DisposeAsync().ConfigureAwait(false);
            if (peer != peers.Responder.Identity.Identifier)
            {
                throw new InvalidOperationException($"The channel reached {peer} instead of the responder.");
            }
        }
    }

    private static async Task ServeTlsAsync(TlsPeers tls, Socket socket)
    {
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        await using (stream.ConfigureAwait(false))
        {
            await stream.AuthenticateAsServerAsync(tls.ServerOptions, CancellationToken.None).ConfigureAwait(false);
            TlsPeers.EnsureMutualTls13(stream);
        }
    }

    private static async Task ConnectTlsAsync(TlsPeers tls, IPEndPoint endpoint)
    {
        var socket = await LoopbackTcp.ConnectAsync(endpoint).ConfigureAwait(false);
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        await using (stream.ConfigureAwait(false))
        {
            await stream.AuthenticateAsClientAsync(tls.ClientOptions, CancellationToken.None).ConfigureAwait(false);
            TlsPeers.EnsureMutualTls13(stream);
        }
    }
}
