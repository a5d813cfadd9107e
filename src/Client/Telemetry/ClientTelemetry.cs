using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace SecureChannels.Client.Telemetry;

/// <summary>
/// The client's instruments (meter <see cref="Name"/>) and spans (activity source <see cref="Name"/>): one span per
/// channel open or accept and per request. Metric tags carry directions and outcomes, never identities or addresses:
/// labels must stay low-cardinality and free of who-talks-to-whom. Spans carry the address an agent chose to open.
/// </summary>
public sealed class ClientTelemetry : IDisposable
{
    /// <summary>The meter's and the activity source's name, for exporters.</summary>
    public const string Name = "SecureChannels.Client";

    /// <summary>The spans: <c>securechannels.open</c>, <c>securechannels.accept</c>, <c>securechannels.request</c>, <c>securechannels.serve</c>.</summary>
    public static readonly ActivitySource Source = new(Name);

    private readonly Meter? _ownedMeter;
    private readonly Counter<long> _channelsOpened;
    private readonly UpDownCounter<long> _channels;
    private readonly Histogram<double> _openDuration;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _hops;
    private readonly Counter<long> _reopens;
    private readonly Counter<long> _lateResponses;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>, or on a meter of its own.</summary>
    public ClientTelemetry(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(Name) ?? (_ownedMeter = new Meter(Name));
        _channelsOpened = meter.CreateCounter<long>("securechannels.client.channels.opened", "{channel}", "Channel opens and accepts, by direction and outcome.");
        _channels = meter.CreateUpDownCounter<long>("securechannels.client.channels", "{channel}", "Channels open now.");
        _openDuration = meter.CreateHistogram<double>("securechannels.client.channel.open.duration", "s", "Time to open a channel: circuit and handshake.");
        _requests = meter.CreateCounter<long>("securechannels.client.requests", "{request}", "Requests sent, by outcome.");
        _requestDuration = meter.CreateHistogram<double>("securechannels.client.request.duration", "s", "Time from a request to its response or failure.");
        _hops = meter.CreateCounter<long>("securechannels.client.hops.established", "{hop}", "Hops to relays established (first connections and reconnects).");
        _reopens = meter.CreateCounter<long>("securechannels.client.channels.reopened", "{channel}", "Channels re-opened after their circuit broke.");
        _lateResponses = meter.CreateCounter<long>("securechannels.client.responses.unmatched", "{response}", "Responses that matched no pending request (late after a timeout).");
    }

    internal void ChannelOpened(string direction, string outcome, TimeSpan elapsed)
    {
        var tags = new TagList { { "direction", direction }, { "outcome", outcome } };
        _channelsOpened.Add(1, tags);
        _openDuration.Record(elapsed.TotalSeconds, tags);
    }

    internal void ChannelTracked() => _channels.Add(1);

    internal void ChannelClosed() => _channels.Add(-1);

    internal void RequestCompleted(string outcome, TimeSpan elapsed)
    {
        var tags = new TagList { { "outcome", outcome } };
        _requests.Add(1, tags);
        _requestDuration.Record(elapsed.TotalSeconds, tags);
    }

    internal void HopEstablished() => _hops.Add(1);

    internal void Reopened() => _reopens.Add(1);

    internal void UnmatchedResponse() => _lateResponses.Add(1);

    /// <inheritdoc />
    public void Dispose() => _ownedMeter?.Dispose();

    /// <summary>The <c>outcome</c> tag's values.</summary>
    internal static class Outcomes
    {
        public const string Ok = "ok";
        public const string Refused = "refused";
        public const string Failed = "failed";
        public const string Fault = "fault";
        public const string Timeout = "timeout";
        public const string Lost = "lost";
    }
}
