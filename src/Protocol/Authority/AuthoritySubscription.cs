using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Protocol.Authority;

/// <summary>Options of an <see cref="AuthoritySubscription"/>.</summary>
public sealed record AuthoritySubscriptionOptions
{
    /// <summary>The first back-off after a failed or lost connection; it doubles up to <see cref="MaxBackoff"/>. Defaults to 1 s.</summary>
    public TimeSpan FirstBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest back-off: a recovered authority is found within this long. Defaults to 30 s.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock for back-off and requests.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where lost connections are logged.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>
/// Keeps an enforcement point (an agent, a relay) subscribed to its authority: connects, subscribes with what it
/// holds (so it catches up on whatever it missed while away), applies every push, and when the channel drops,
/// reconnects after a jittered exponential back-off. Revocations and policies held stay in force meanwhile.
/// </summary>
public sealed partial class AuthoritySubscription
{
    private readonly Func<CancellationToken, Task<SecureChannel>> _connect;
    private readonly RevocationRegistry _revocations;
    private readonly PolicyBook? _policies;
    private readonly AuthoritySubscriptionOptions _options;
    private int _subscriptions;

    /// <summary>Creates the subscription; <see cref="RunAsync"/> runs it.</summary>
    /// <param name="connect">Opens a secure channel to the authority (pinned to its identifier).</param>
    /// <param name="revocations">Where accepted revocation lists go; open channels that honour it re-check at once.</param>
    /// <param name="policies">Where accepted policy documents go, or null to ignore them.</param>
    /// <param name="options">Back-off and clock.</param>
    public AuthoritySubscription(Func<CancellationToken, Task<SecureChannel>> connect, RevocationRegistry revocations, PolicyBook? policies = null, AuthoritySubscriptionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(connect);
        ArgumentNullException.ThrowIfNull(revocations);
        _connect = connect;
        _revocations = revocations;
        _policies = policies;
        _options = options ?? new AuthoritySubscriptionOptions();
    }

    /// <summary>How many times a subscription was established (the first, then each reconnect).</summary>
    public int Subscriptions => Volatile.Read(ref _subscriptions);

    /// <summary>The client of the current connection, or null while disconnected.</summary>
    public AuthorityClient? Current { get; private set; }

    /// <summary>Subscribes and stays subscribed until <paramref name="stoppingToken"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var backoff = new Resilience.Backoff(_options.FirstBackoff, _options.MaxBackoff);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var channel = await _connect(stoppingToken).ConfigureAwait(false);
                var client = new AuthorityClient(channel, new AuthorityClientOptions { TimeProvider = _options.TimeProvider, Logger = _options.Logger });
                await using (client.ConfigureAwait(false))
                {
                    await client.SubscribeAsync(_revocations, _policies, stoppingToken).ConfigureAwait(false);
                    Current = client;
                    Interlocked.Increment(ref _subscriptions);
                    backoff.Reset();
                    await client.Completion.WaitAsync(stoppingToken).ConfigureAwait(false);
                    Current = null;
                    LogLost(_options.Logger, "the channel closed");
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is AuthorityException or SecureChannelException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                Current = null;
                LogLost(_options.Logger, e.Message);
            }

            try
            {
                await Task.Delay(backoff.Next(), _options.TimeProvider, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "Subscription to the authority lost ({Why}); reconnecting after a back-off")]
    private static partial void LogLost(ILogger logger, string why);
}
