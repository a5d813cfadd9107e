using System.Diagnostics.Metrics;

namespace SecureChannels.Relay.Telemetry;

/// <summary>
/// The relay's instruments (docs/protocol.md §9.8), on the meter <see cref="MeterName"/>. Tags carry reasons
/// and kinds, never identities: metric labels must stay low-cardinality and free of who-talks-to-whom.
/// </summary>
public sealed class RelayMetrics
{
    /// <summary>The meter's name, for exporters.</summary>
    public const string MeterName = "SecureChannels.Relay";

    private readonly UpDownCounter<long> _connections;
    private readonly Counter<long> _connectionsOpened;
    private readonly UpDownCounter<long> _circuits;
    private readonly Counter<long> _circuitsOpened;
    private readonly Counter<long> _bytesForwarded;
    private readonly Counter<long> _framesForwarded;
    private readonly Counter<long> _refusals;
    private readonly Histogram<double> _handshakeDuration;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public RelayMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _connections = meter.CreateUpDownCounter<long>("securechannels.relay.connections", "{connection}", "Hops open now.");
        _connectionsOpened = meter.CreateCounter<long>("securechannels.relay.connections.opened", "{connection}", "Hops that completed the handshake and HELLO.");
        _circuits = meter.CreateUpDownCounter<long>("securechannels.relay.circuits", "{circuit}", "Circuits open now.");
        _circuitsOpened = meter.CreateCounter<long>("securechannels.relay.circuits.opened", "{circuit}", "Circuits accepted by their target.");
        _bytesForwarded = meter.CreateCounter<long>("securechannels.relay.bytes.forwarded", "By", "Opaque circuit bytes forwarded.");
        _framesForwarded = meter.CreateCounter<long>("securechannels.relay.frames.forwarded", "{frame}", "Circuit frames forwarded.");
        _refusals = meter.CreateCounter<long>("securechannels.relay.refusals", "{refusal}", "Hops, opens and frames refused, by reason.");
        _handshakeDuration = meter.CreateHistogram<double>("securechannels.relay.handshake.duration", "s", "Time from TCP accept to WELCOME.");
    }

    internal void ConnectionOpened()
    {
        _connections.Add(1);
        _connectionsOpened.Add(1);
    }

    internal void ConnectionClosed() => _connections.Add(-1);

    internal void CircuitOpened()
    {
        _circuits.Add(1);
        _circuitsOpened.Add(1);
    }

    internal void CircuitClosed() => _circuits.Add(-1);

    internal void Forwarded(int bytes)
    {
        _framesForwarded.Add(1);
        if (bytes > 0)
        {
            _bytesForwarded.Add(bytes);
        }
    }

    internal void Refused(string reason) => _refusals.Add(1, new KeyValuePair<string, object?>("reason", reason));

    internal void Handshake(TimeSpan duration) => _handshakeDuration.Record(duration.TotalSeconds);
}
