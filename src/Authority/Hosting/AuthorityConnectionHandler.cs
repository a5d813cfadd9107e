using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Publication;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Authority.Hosting;

/// <summary>
/// Kestrel's entry point: cheap admission before any cryptography (connections and pending handshakes
/// counted), the caller's secure channel, then its session. Any authenticated identity may open a channel:
/// enrolling agents have no credential yet, so each request is authorized on its own.
/// </summary>
internal sealed partial class AuthorityConnectionHandler : ConnectionHandler, IDisposable
{
    // Every caller proves its identity in the handshake; what it may do is decided per request.
    private static readonly AccessPolicy AnyIdentity = AccessPolicy.Parse("true");

    private readonly AuthorityService _service;
    private readonly PublicationHub _hub;
    private readonly AuthorityOptions _options;
    private readonly TimeProvider _time;
    private readonly AuthorityMetrics _metrics;
    private readonly ILogger _logger;
    private readonly AttestedChannelKey _channelKey;
    private readonly CancellationToken _stopping;
    private int _connections;
    private int _pendingHandshakes;

    public AuthorityConnectionHandler(AuthorityService service, PublicationHub hub, AuthorityOptions options, TimeProvider time, AuthorityMetrics metrics, IHostApplicationLifetime lifetime, ILogger<AuthorityConnectionHandler> logger)
    {
        _service = service;
        _hub = hub;
        _options = options;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _channelKey = new AttestedChannelKey(service.Identity, time: time);
        _stopping = lifetime.ApplicationStopping;
    }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (Interlocked.Increment(ref _connections) > _options.MaxConnections)
        {
            Refuse(connection, "max_connections");
            Interlocked.Decrement(ref _connections);
            return;
        }

        _metrics.ConnectionOpened();
        try
        {
            var channel = await HandshakeAsync(connection).ConfigureAwait(false);
            if (channel is not null)
            {
                using var closing = CancellationTokenSource.CreateLinkedTokenSource(_stopping, connection.ConnectionClosed);
                await new AuthoritySession(channel, _service, _hub, _logger).RunAsync(closing.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _connections);
            _metrics.ConnectionClosed();
        }
    }

    public void Dispose() => _channelKey.Dispose();

    private async Task<SecureChannel?> HandshakeAsync(ConnectionContext connection)
    {
        if (Interlocked.Increment(ref _pendingHandshakes) > _options.MaxPendingHandshakes)
        {
            // Refused before any key is touched: a flood costs an accept and a close.
            Interlocked.Decrement(ref _pendingHandshakes);
            Refuse(connection, "max_pending_handshakes");
            return null;
        }

        try
        {
            var (key, attestation) = await _channelKey.GetAsync(connection.ConnectionClosed).ConfigureAwait(false);
            var options = new SecureChannelOptions
            {
                Identity = _service.Identity,
                ChannelKey = key,
                Attestation = attestation,
                Verifier = _service.Verifier,
                Revocations = _service.Revocations,
                Policy = AnyIdentity,
                TimeProvider = _time,
                Logger = _logger,
                MaxMessageSize = Protocol.Authority.AuthorityLimits.MaxMessageLength,
                HandshakeTimeout = _options.HandshakeTimeout,
                IdleTimeout = _options.IdleTimeout,
                KeepaliveInterval = _options.IdleTimeout / 4,
            };
            return await SecureChannel.AcceptAsync(connection.Transport, options, connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureChannelException or OperationCanceledException)
        {
            _metrics.ConnectionRefused("handshake_failed");
            LogHandshakeFailed(_logger, connection.RemoteEndPoint, e.Message);
            return null;
        }
        finally
        {
            Interlocked.Decrement(ref _pendingHandshakes);
        }
    }

    private void Refuse(ConnectionContext connection, string reason)
    {
        _metrics.ConnectionRefused(reason);
        connection.Abort(new ConnectionAbortedException(reason));
    }

    [LoggerMessage(EventId = 31, Level = LogLevel.Information, Message = "Handshake from {Remote} failed: {Detail}")]
    private static partial void LogHandshakeFailed(ILogger logger, System.Net.EndPoint? remote, string detail);
}
