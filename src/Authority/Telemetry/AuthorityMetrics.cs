using System.Diagnostics.Metrics;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Telemetry;

/// <summary>The authority's instruments (meter <see cref="MeterName"/>), exported on /metrics.</summary>
public sealed class AuthorityMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "SecureChannels.Authority";

    private readonly Meter _meter;
    private readonly Counter<long> _enrollments;
    private readonly Counter<long> _issued;
    private readonly Counter<long> _tickets;
    private readonly Counter<long> _revocations;
    private readonly Counter<long> _policies;
    private readonly Counter<long> _storeRetries;
    private readonly Counter<long> _subscribersCut;
    private readonly Counter<long> _connectionsRefused;
    private readonly Histogram<double> _propagation;
    private long _subscribers;
    private long _connections;
    private long _subscribersCutCount;

    /// <summary>Creates the instruments.</summary>
    public AuthorityMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _enrollments = _meter.CreateCounter<long>("securechannels.authority.enrollments", description: "Enrollment attempts, by outcome.");
        _issued = _meter.CreateCounter<long>("securechannels.authority.issuances", description: "Credentials issued or registered, by kind (enroll, refresh, delegation).");
        _tickets = _meter.CreateCounter<long>("securechannels.authority.tickets", description: "Enrollment tickets created.");
        _revocations = _meter.CreateCounter<long>("securechannels.authority.revocations", description: "Revocations, by kind.");
        _policies = _meter.CreateCounter<long>("securechannels.authority.policy_publications", description: "Policy documents published.");
        _storeRetries = _meter.CreateCounter<long>("securechannels.authority.store_retries", description: "Store writes retried because the store was unreachable.");
        _subscribersCut = _meter.CreateCounter<long>("securechannels.authority.subscribers_cut", description: "Subscribers disconnected because they did not take a push in time.");
        _connectionsRefused = _meter.CreateCounter<long>("securechannels.authority.connections_refused", description: "Connections refused before the handshake (limits).");
        _propagation = _meter.CreateHistogram<double>("securechannels.authority.propagation", unit: "ms", description: "From a publication to its push being written to every subscriber.");
        _meter.CreateObservableGauge("securechannels.authority.subscribers", () => Interlocked.Read(ref _subscribers), description: "Subscribers connected.");
        _meter.CreateObservableGauge("securechannels.authority.connections", () => Interlocked.Read(ref _connections), description: "Connections open.");
    }

    /// <summary>Subscribers connected now.</summary>
    public long Subscribers => Interlocked.Read(ref _subscribers);

    /// <summary>Subscribers cut so far.</summary>
    public long SubscribersCut => Interlocked.Read(ref _subscribersCutCount);

    internal void Enrollment(string outcome) => _enrollments.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    internal void Issued(string kind)
    {
        _issued.Add(1, new KeyValuePair<string, object?>("kind", kind));
    }

    internal void TicketCreated() => _tickets.Add(1);

    internal void Revoked(RevocationKind kind) => _revocations.Add(1, new KeyValuePair<string, object?>("kind", kind.ToString().ToLowerInvariant()));

    internal void PolicyPublished() => _policies.Add(1);

    internal void StoreRetry() => _storeRetries.Add(1);

    internal void SubscriberAdded() => Interlocked.Increment(ref _subscribers);

    internal void SubscriberRemoved() => Interlocked.Decrement(ref _subscribers);

    internal void SubscriberCut()
    {
        Interlocked.Increment(ref _subscribersCutCount);
        _subscribersCut.Add(1);
    }

    internal void ConnectionOpened() => Interlocked.Increment(ref _connections);

    internal void ConnectionClosed() => Interlocked.Decrement(ref _connections);

    internal void ConnectionRefused(string reason) => _connectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    internal void Propagated(TimeSpan elapsed) => _propagation.Record(elapsed.TotalMilliseconds);

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
