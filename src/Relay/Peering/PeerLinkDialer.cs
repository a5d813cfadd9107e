using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Routing;

namespace SecureChannels.Relay.Peering;

/// <summary>
/// Keeps a link to every peer relay that has an endpoint (§9.6): dial, authenticate the peer as its configured
/// identity, HELLO as a relay, then serve the link like any hop; redial with capped exponential back-off.
/// </summary>
internal sealed partial class PeerLinkDialer(CircuitSwitch circuitSwitch, HopChannelFactory channels, IOptions<RelayOptions> options, TimeProvider time, ILogger<PeerLinkDialer> logger) : BackgroundService
{
    // Back-off between attempts: from one second, doubling, capped so a recovered peer is found within half a minute.
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(options.Value.Peers.Where(static p => !string.IsNullOrEmpty(p.Endpoint)).Select(p => KeepLinkedAsync(p, stoppingToken)));

    private async Task KeepLinkedAsync(RelayPeerOptions peer, CancellationToken stoppingToken)
    {
        var backoff = FirstBackoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // A link the peer dialed serves as well as ours: dialing anyway would supersede it, and with both
                // sides configured to dial, the two links would replace each other forever.
                var linked = !circuitSwitch.IsLinked(peer.Name) && await LinkOnceAsync(peer, stoppingToken).ConfigureAwait(false);
                if (linked)
                {
                    backoff = FirstBackoff;
                }
            }
            catch (Exception e) when (e is SocketException or SecureChannelException or RelayException or IOException || (e is OperationCanceledException && !stoppingToken.IsCancellationRequested))
            {
                LogLinkFailed(logger, peer.Name, e.Message);
            }

            try
            {
                await Task.Delay(backoff, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
        }
    }

    private async Task<bool> LinkOnceAsync(RelayPeerOptions peer, CancellationToken stoppingToken)
    {
        var endpoint = IPEndPoint.Parse(peer.Endpoint!);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var deadline = new CancellationTokenSource(options.Value.HandshakeTimeout, time);
            using var linkedToken = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, stoppingToken);
            await socket.ConnectAsync(endpoint, linkedToken.Token).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var pipe = new SocketPipe(socket);
        await using (pipe.ConfigureAwait(false))
        {
            SecureChannel? hop = null;
            HopSession? session;
            try
            {
                using var deadline = new CancellationTokenSource(options.Value.HandshakeTimeout, time);
                using var linkedToken = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, stoppingToken);
                var channelOptions = await channels.ForDialedLinkAsync(Identifier.Parse(peer.Identifier), linkedToken.Token).ConfigureAwait(false);
                hop = await SecureChannel.ConnectAsync(pipe, channelOptions, linkedToken.Token).ConfigureAwait(false);
                await hop.SendAsync(RelayFrames.Hello(new HelloFrame(Listen: false, [], circuitSwitch.Name)), linkedToken.Token).ConfigureAwait(false);
                using (var answer = await hop.ReceiveAsync(linkedToken.Token).ConfigureAwait(false)
                    ?? throw new RelayException(RelayErrorCode.PeerGone, "The peer relay closed before WELCOME."))
                {
                    if (RelayFrames.ReadType(answer.Payload.Span) == RelayFrameType.GoAway)
                    {
                        var goAway = RelayFrames.DecodeGoAway(answer.Payload);
                        throw new RelayException(goAway.Code, $"The peer relay refused the link: {goAway.Reason}", fromPeer: true);
                    }

                    var welcome = RelayFrames.DecodeWelcome(answer.Payload);
                    if (welcome.Relay != peer.Name)
                    {
                        throw new RelayException(RelayErrorCode.UnknownPeer, $"The peer relay calls itself '{welcome.Relay}', not '{peer.Name}'.");
                    }
                }

                session = circuitSwitch.EstablishDialedLink(hop, peer.Name)
                    ?? throw new RelayException(RelayErrorCode.LimitExceeded, "Too many connections of the peer relay's identity.");
            }
            catch
            {
                if (hop is not null)
                {
                    await hop.DisposeAsync().ConfigureAwait(false);
                }

                throw;
            }

            LogLinked(logger, peer.Name);
            await session.RunAsync().ConfigureAwait(false);
            return true;
        }
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Linked to peer relay {Peer}")]
    private static partial void LogLinked(ILogger logger, string peer);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "Link to peer relay {Peer} failed: {Reason}")]
    private static partial void LogLinkFailed(ILogger logger, string peer, string reason);
}
