using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Protocol.Authority;

/// <summary>Options of a <see cref="CredentialRefresher"/>.</summary>
public sealed record CredentialRefresherOptions
{
    /// <summary>Refresh when this fraction of the lifetime has passed (less jitter). Defaults to 2/3: an hour's credential is refreshed after about 40 minutes.</summary>
    public double RefreshAt { get; init; } = 2.0 / 3;

    /// <summary>Up to this fraction of the lifetime earlier, at random, so agents enrolled together do not refresh together. Defaults to 0.1.</summary>
    public double Jitter { get; init; } = 0.1;

    /// <summary>
    /// The refresh is due at the latest this long before the credential's not-after: verifiers allow this much clock
    /// skew (§6, 60 s), so a verifier whose clock runs ahead already sees the credential expired that much earlier.
    /// Defaults to 2 minutes.
    /// </summary>
    public TimeSpan SkewAllowance { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>First back-off after a failed attempt the authority called transient (or an unreachable authority); doubles up to a minute. Defaults to 5 s.</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where failures are logged.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>
/// Keeps an agent's root credential fresh: ahead of its expiry (with jitter and a clock-skew allowance) it asks the
/// authority for a new one and hands it to <see cref="Refreshed"/>, whose handler presents it in the agent's open
/// channels (<see cref="Channel.SecureChannel.UpdateCredentialsAsync"/>), so they outlive every single credential.
/// A transient failure is retried with back-off until the credential expires; a refusal (revoked, unknown) ends
/// <see cref="RunAsync"/> with that <see cref="AuthorityException"/>.
/// </summary>
public sealed partial class CredentialRefresher
{
    private static readonly TimeSpan MaxRetryBackoff = TimeSpan.FromMinutes(1);

    private readonly Func<CancellationToken, Task<AuthorityClient>> _connect;
    private readonly CredentialRefresherOptions _options;
    private CredentialChain _current;

    /// <summary>Creates a refresher for <paramref name="current"/>.</summary>
    /// <param name="connect">Opens a client to the authority (enroll and refresh need only the agent's identity: connect without credentials).</param>
    /// <param name="current">The credential to keep fresh (a root credential of that authority).</param>
    /// <param name="options">Timing.</param>
    public CredentialRefresher(Func<CancellationToken, Task<AuthorityClient>> connect, CredentialChain current, CredentialRefresherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(connect);
        ArgumentNullException.ThrowIfNull(current);
        _connect = connect;
        _current = current;
        _options = options ?? new CredentialRefresherOptions();
    }

    /// <summary>The newest credential.</summary>
    public CredentialChain Current => Volatile.Read(ref _current);

    /// <summary>How many refreshes succeeded.</summary>
    public int Refreshes { get; private set; }

    /// <summary>Called with each new credential; present it in open channels here.</summary>
    public event Func<CredentialChain, Task>? Refreshed;

    /// <summary>When the current credential is due for refresh (before jitter).</summary>
    public DateTimeOffset DueAt(CredentialChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var credential = chain.Leaf.Credential;
        var lifetime = credential.NotAfter - credential.NotBefore;
        var due = credential.NotBefore + (lifetime * _options.RefreshAt);
        var latest = credential.NotAfter - _options.SkewAllowance;

        // Never before half the lifetime, however short it is: a credential shorter than the skew allowance must
        // not turn into a refresh loop.
        var earliest = credential.NotBefore + (lifetime / 2);
        var chosen = due < latest ? due : latest;
        return chosen > earliest ? chosen : earliest;
    }

    /// <summary>Refreshes ahead of every expiry until <paramref name="stoppingToken"/> is cancelled.</summary>
    /// <exception cref="AuthorityException">The authority refused for good (revoked, unknown, not this agent's), or the credential expired before a refresh got through.</exception>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var time = _options.TimeProvider;
        while (!stoppingToken.IsCancellationRequested)
        {
            var current = Current;
            var lifetime = current.Leaf.Credential.NotAfter - current.Leaf.Credential.NotBefore;
            var due = DueAt(current) - (lifetime * (_options.Jitter * Random.Shared.NextDouble()));
            var wait = due - time.GetUtcNow();
            try
            {
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time, stoppingToken).ConfigureAwait(false);
                }

                var fresh = await RefreshOnceAsync(current, stoppingToken).ConfigureAwait(false);
                Volatile.Write(ref _current, fresh);
                Refreshes++;
                if (Refreshed is { } handler)
                {
                    await handler(fresh).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task<CredentialChain> RefreshOnceAsync(CredentialChain current, CancellationToken stoppingToken)
    {
        var time = _options.TimeProvider;
        var backoff = _options.RetryBackoff;
        while (true)
        {
            try
            {
                var client = await _connect(stoppingToken).ConfigureAwait(false);
                await using (client.ConfigureAwait(false))
                {
                    return await client.RefreshAsync(current.Leaf.Credential.Id, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (IsTransient(e) && !stoppingToken.IsCancellationRequested)
            {
                if (time.GetUtcNow() + backoff >= current.Leaf.Credential.NotAfter)
                {
                    throw new AuthorityException(AuthorityErrorCode.Unavailable, $"The credential {current.Leaf.Credential.IdText} expires before the authority could refresh it.", e);
                }

                LogRetry(_options.Logger, current.Leaf.Credential.IdText, e.Message);
                await Task.Delay(backoff, time, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(MaxRetryBackoff.Ticks, backoff.Ticks * 2));
            }
        }
    }

    private static bool IsTransient(Exception e) =>
        e is AuthorityException { IsTransient: true } or Channel.SecureChannelException or IOException or System.Net.Sockets.SocketException;

    [LoggerMessage(EventId = 42, Level = LogLevel.Warning, Message = "Refreshing credential {CredentialId} failed; retrying: {Why}")]
    private static partial void LogRetry(ILogger logger, string credentialId, string why);
}
