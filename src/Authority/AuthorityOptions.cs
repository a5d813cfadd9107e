using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.Options;

namespace SecureChannels.Authority;

/// <summary>Which store the authority keeps its records in.</summary>
public enum AuthorityStoreKind
{
    /// <summary>An embedded SQLite file: one authority instance, nothing to run beside it.</summary>
    Sqlite,

    /// <summary>A PostgreSQL database: several authority instances share it.</summary>
    Postgres,
}

/// <summary>
/// The authority's settings, bound from the "Authority" configuration section (appsettings, environment,
/// command line). Every limit has one name, one default and one line of why; docs/protocol.md §10.5 uses the
/// same names.
/// </summary>
public sealed class AuthorityOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Authority";

    /// <summary>Where agents reach the authority's secure channel (TCP). Loopback by default: exposing it is a decision.</summary>
    [Required]
    public string Endpoint { get; set; } = "127.0.0.1:7400";

    /// <summary>Where /healthz and /metrics are served over HTTP; empty for none.</summary>
    public string MetricsEndpoint { get; set; } = "127.0.0.1:7401";

    /// <summary>The store.</summary>
    public AuthorityStoreKind Store { get; set; } = AuthorityStoreKind.Sqlite;

    /// <summary>The SQLite database file (for <see cref="AuthorityStoreKind.Sqlite"/>).</summary>
    public string SqlitePath { get; set; } = "authority.db";

    /// <summary>The PostgreSQL connection string (for <see cref="AuthorityStoreKind.Postgres"/>). Never logged.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>
    /// The shortest credential lifetime: refreshes come at two thirds of a lifetime and at least 2 minutes before its
    /// end (more than the verifiers' 60 s clock skew), so a shorter credential would be refreshed almost continuously.
    /// </summary>
    public static readonly TimeSpan MinCredentialLifetime = TimeSpan.FromMinutes(10);

    /// <summary>Lifetime of an issued credential when the ticket does not say: short, so a lost key stops working soon; agents refresh ahead of expiry.</summary>
    [Range(typeof(TimeSpan), "00:10:00", "30.00:00:00")]
    public TimeSpan CredentialLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Longest credential lifetime a ticket may ask for.</summary>
    [Range(typeof(TimeSpan), "00:10:00", "365.00:00:00")]
    public TimeSpan MaxCredentialLifetime { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How long a ticket waits to be used when its creator does not say.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "30.00:00:00")]
    public TimeSpan TicketLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Longest a ticket may wait: an unused ticket is a standing secret.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "90.00:00:00")]
    public TimeSpan MaxTicketLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Enrollments admitted per second on average (token bucket): a flood is refused before any hashing or database work.</summary>
    [Range(1, 1_000_000)]
    public int EnrollmentRate { get; set; } = 500;

    /// <summary>Enrollments admitted at once before the rate applies: a swarm of agents created together enrolls together.</summary>
    [Range(1, 1_000_000)]
    public int EnrollmentBurst { get; set; } = 2000;

    /// <summary>Open connections at most: each holds a channel's buffers.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnections { get; set; } = 20_000;

    /// <summary>Connections still in their handshake at most: handshakes cost signatures and X25519, so a connection flood is cut before the crypto.</summary>
    [Range(1, 100_000)]
    public int MaxPendingHandshakes { get; set; } = 1024;

    /// <summary>How long a handshake may take.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A channel with nothing received for this long is closed; subscribers are kept alive by keepalives.</summary>
    [Range(typeof(TimeSpan), "00:00:02", "01:00:00")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>A push a subscriber does not take within this long cuts the subscriber: nothing is buffered for it without bound.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan SubscriberSendTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the store is read for revocations and policies published by other instances (or by the CLI).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan StorePollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Retries of a write the store could not take (unreachable), with doubling back-off from <see cref="StoreRetryDelay"/>.</summary>
    [Range(0, 10)]
    public int StoreRetries { get; set; } = 3;

    /// <summary>First back-off before retrying a store write.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan StoreRetryDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Entries the revocation list holds at most; the wire's limit (65,536) by default. When it is full, credential
    /// entries whose credential expired more than <see cref="RevocationPruneMargin"/> ago are dropped before a new
    /// entry goes in (expiry alone refuses those credentials now), so revoking keeps working for as long as the
    /// authority runs. Only when nothing can be dropped is a revocation refused (OutOfRange).
    /// </summary>
    [Range(1, Protocol.Credentials.CredentialLimits.MaxRevocationEntries)]
    public int MaxRevocationEntries { get; set; } = Protocol.Credentials.CredentialLimits.MaxRevocationEntries;

    /// <summary>
    /// How long after a revoked credential expired its entry stays listed: for verifiers whose clocks run behind. At
    /// least an hour, the largest clock skew a verifier may allow (<c>CredentialVerifierOptions.ClockSkew</c>), which
    /// accepts a credential that long past its expiry.
    /// </summary>
    [Range(typeof(TimeSpan), "01:00:00", "30.00:00:00")]
    public TimeSpan RevocationPruneMargin { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The authority's channel endpoint as parsed.</summary>
    public IPEndPoint GetEndPoint() => IPEndPoint.Parse(Endpoint);
}

/// <summary>Checks what data annotations cannot: endpoints parse, lifetimes are ordered, the store is configured.</summary>
internal sealed class AuthorityOptionsValidator : IValidateOptions<AuthorityOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthorityOptions options)
    {
        var failures = new List<string>();
        if (!IPEndPoint.TryParse(options.Endpoint, out _))
        {
            failures.Add($"Authority:Endpoint '{options.Endpoint}' is not an address:port.");
        }

        if (!string.IsNullOrEmpty(options.MetricsEndpoint) && !IPEndPoint.TryParse(options.MetricsEndpoint, out _))
        {
            failures.Add($"Authority:MetricsEndpoint '{options.MetricsEndpoint}' is not an address:port.");
        }

        if (options.CredentialLifetime > options.MaxCredentialLifetime)
        {
            failures.Add("Authority:CredentialLifetime exceeds Authority:MaxCredentialLifetime.");
        }

        if (options.TicketLifetime > options.MaxTicketLifetime)
        {
            failures.Add("Authority:TicketLifetime exceeds Authority:MaxTicketLifetime.");
        }

        if (options.Store == AuthorityStoreKind.Postgres && string.IsNullOrWhiteSpace(options.PostgresConnectionString))
        {
            failures.Add("Authority:PostgresConnectionString is required when Authority:Store is Postgres.");
        }

        if (options.Store == AuthorityStoreKind.Sqlite && string.IsNullOrWhiteSpace(options.SqlitePath))
        {
            failures.Add("Authority:SqlitePath is required when Authority:Store is Sqlite.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
