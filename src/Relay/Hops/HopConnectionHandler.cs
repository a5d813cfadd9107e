using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Relay.Routing;

namespace SecureChannels.Relay.Hops;

/// <summary>
/// Kestrel's entry point for hops: cheap admission before any cryptography, the hop's secure channel under the
/// admission policy, HELLO, then the session until the hop ends.
/// </summary>
internal sealed partial class HopConnectionHandler(CircuitSwitch circuitSwitch, HopChannelFactory channels, IOptions<RelayOptions> options, TimeProvider time, ILogger<HopConnectionHandler> logger) : ConnectionHandler
{
    private readonly RelayOptions _options = options.Value;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var remote = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (!circuitSwitch.TryAdmitSocket(remote, out var refusal))
        {
            // Refused before a single byte is read or any key is touched: a flood costs an accept and a close.
            circuitSwitch.Metrics.Refused(refusal);
            connection.Abort(new ConnectionAbortedException(refusal));
            return;
        }

        try
        {
            var session = await SetUpAsync(connection).ConfigureAwait(false);
            if (session is not null)
            {
                await session.RunAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            circuitSwitch.ReleaseSocket(remote);
        }
    }

    private async Task<HopSession?> SetUpAsync(ConnectionContext connection)
    {
        var started = time.GetTimestamp();
        SecureChannel? hop = null;
        try
        {
            using var deadline = new CancellationTokenSource(_options.HandshakeTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, connection.ConnectionClosed);
            hop = await SecureChannel.AcceptAsync(connection.Transport, await channels.ForAcceptedHopAsync(linked.Token).ConfigureAwait(false), linked.Token).ConfigureAwait(false);
            using var hello = await hop.ReceiveAsync(linked.Token).ConfigureAwait(false)
                ?? throw new RelayException(RelayErrorCode.ProtocolViolation, "The hop closed before HELLO.");
            if (RelayFrames.ReadType(hello.Payload.Span) != RelayFrameType.Hello)
            {
                throw new RelayException(RelayErrorCode.ProtocolViolation, "Protocol violation: the first frame must be HELLO.");
            }

            var (session, goAway) = circuitSwitch.Establish(hop, RelayFrames.DecodeHello(hello.Payload));
            if (session is null)
            {
                circuitSwitch.Metrics.Refused(goAway.Code.ToString());
                await hop.SendAsync(RelayFrames.GoAway(goAway.Code, goAway.Reason), linked.Token).ConfigureAwait(false);
                await hop.DisposeAsync().ConfigureAwait(false);
                return null;
            }

            circuitSwitch.Metrics.Handshake(time.GetElapsedTime(started));
            return session;
        }
        catch (Exception e) when (e is SecureChannelException or RelayException or OperationCanceledException)
        {
            var reason = e switch
            {
                SecureChannelException { Code: ChannelErrorCode.AccessDenied or ChannelErrorCode.CredentialExpired or ChannelErrorCode.CredentialRevoked } => "admission_denied",
                SecureChannelException => "handshake_failed",
                RelayException => "bad_hello",
                _ => "handshake_timeout",
            };
            circuitSwitch.Metrics.Refused(reason);
            LogRefused(logger, connection.RemoteEndPoint, reason, e.Message);
            if (hop is not null)
            {
                if (e is RelayException { Code: var code } && !connection.ConnectionClosed.IsCancellationRequested)
                {
                    // A bad first frame is answered, as §9.1 promises: GOAWAY with the code, then the hop closes.
                    await TrySendAsync(hop, RelayFrames.GoAway(code, e.Message)).ConfigureAwait(false);
                }

                await hop.DisposeAsync().ConfigureAwait(false);
            }

            return null;
        }
        finally
        {
            circuitSwitch.HandshakeFinished();
        }
    }

    private async Task TrySendAsync(SecureChannel hop, byte[] frame)
    {
        using var deadline = new CancellationTokenSource(_options.ShutdownTimeout, time);
        try
        {
            await hop.SendAsync(frame, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureChannelException or OperationCanceledException)
        {
            // Best effort: the hop is being dropped either way.
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Hop from {Remote} refused ({Reason}): {Detail}")]
    private static partial void LogRefused(ILogger logger, EndPoint? remote, string reason, string detail);
}
