using System.Net;
using Microsoft.Extensions.Options;

namespace SecureChannels.Relay.Tests;

/// <summary>
/// Tests that read /metrics. The OpenTelemetry exporter listens to every meter named "SecureChannels.Relay" in the
/// process, so a relay's /metrics also counts other relays running at the same time: these tests run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "Relay metrics (not parallel)";
}

/// <summary>What operators see and set: /healthz, /metrics, and options checked at start (docs/protocol.md §9.8).</summary>
[Collection(RunsAlone.Name)]
public sealed class RelayOperationsTests
{
    [Fact]
    public async Task Healthz_answers_ok_while_the_relay_accepts_hops()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();

        var (status, body) = await RelayTestKit.GetAsync(relay, "/healthz");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ok", body);
    }

    [Fact]
    public async Task Metrics_report_connections_and_circuits_in_Prometheus_text()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var (opened, accepted, _) = await RelayTestKit.CircuitAsync(linkA, linkB, bob.Identity.Identifier.ToString());
        await opened.Output.WriteAsync("ping"u8.ToArray());
        var read = await accepted.Input.ReadAtLeastAsync(4).AsTask().WaitAsync(RelayTestKit.Guard);
        accepted.Input.AdvanceTo(read.Buffer.End);

        var (status, body) = await RelayTestKit.GetAsync(relay, "/metrics");

        Assert.Equal(HttpStatusCode.OK, status);
        var lines = body.Split('\n');
        Assert.Contains("# TYPE securechannels_relay_connections gauge", lines);
        Assert.Contains("securechannels_relay_connections{otel_scope_name=\"SecureChannels.Relay\"} 2", lines);
        Assert.Contains("# TYPE securechannels_relay_connections_opened_total counter", lines);
        Assert.Contains("securechannels_relay_connections_opened_total{otel_scope_name=\"SecureChannels.Relay\"} 2", lines);
        Assert.Contains("# TYPE securechannels_relay_circuits gauge", lines);
        Assert.Contains("securechannels_relay_circuits{otel_scope_name=\"SecureChannels.Relay\"} 1", lines);
        Assert.Contains("# TYPE securechannels_relay_circuits_opened_total counter", lines);
        Assert.Contains("securechannels_relay_circuits_opened_total{otel_scope_name=\"SecureChannels.Relay\"} 1", lines);
        Assert.Contains("# TYPE securechannels_relay_bytes_forwarded_bytes_total counter", lines);
        Assert.Contains("securechannels_relay_bytes_forwarded_bytes_total{otel_scope_name=\"SecureChannels.Relay\"} 4", lines);
        Assert.Contains("# TYPE securechannels_relay_frames_forwarded_total counter", lines);
        Assert.Contains("# TYPE securechannels_relay_handshake_duration_seconds histogram", lines);
        Assert.Contains("securechannels_relay_handshake_duration_seconds_count{otel_scope_name=\"SecureChannels.Relay\"} 2", lines);
    }

    [Theory]
    [InlineData("Name", "Bad Name")]
    [InlineData("Admission", "((")]
    [InlineData("Endpoint", "not-an-endpoint")]
    [InlineData("OpenTimeout", "00:00:00")]
    [InlineData("MaxCircuitWindow", "1024")]
    [InlineData("Peers:0:Name", "relay-a")]
    public async Task Invalid_options_stop_the_relay_from_starting(string key, string value)
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var settings = new Dictionary<string, string?> { [key] = value };
        if (key.StartsWith("Peers", StringComparison.Ordinal))
        {
            settings["Peers:0:Identifier"] = (await kit.CreateAgentAsync(["role=relay"])).Identity.Identifier.ToString();
        }

        await Assert.ThrowsAsync<OptionsValidationException>(() => kit.StartRelayAsync(settings: settings));
    }
}
