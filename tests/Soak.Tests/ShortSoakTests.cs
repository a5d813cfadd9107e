using SecureChannels.Benchmarks.Soak;

namespace SecureChannels.Soak.Tests;

/// <summary>
/// The soak's short preset (<see cref="SoakOptions.Quick"/>: 100 agents for 20 s, the relay killed and restarted once,
/// a few agents killed three times) on the real clock. The counts vary from run to run; what is asserted does not:
/// no message lost, duplicated or out of order, no phase hung, the relay's circuit table empty at the end.
/// </summary>
public sealed class ShortSoakTests
{
    [Fact]
    public async Task Agents_through_a_relay_killed_and_restarted_lose_no_message_and_leave_no_circuit()
    {
        using var log = new StringWriter();
        var result = await SoakRun.RunAsync(SoakOptions.Quick, log);
        var report = result.ToMarkdown("soak --quick (tests/Soak.Tests)", "test run") + Environment.NewLine + log;

        // One assertion per invariant, each with the whole report, so a failure in CI says everything at once.
        Assert.True(result.Totals.Lost == 0, report);
        Assert.True(result.Totals.Duplicates == 0, report);
        Assert.True(result.Totals.OutOfOrder == 0, report);
        Assert.True(result.Totals.Foreign == 0, report);
        Assert.True(result.Totals.Unexpected == 0, report);
        Assert.True(result.HungPhase is null, report);
        Assert.True(result.RelayEmpty, report);

        // The run did what it claims: traffic flowed, the relay and agents were killed, and agents reconnected.
        Assert.True(result.Totals.Delivered > 0, report);
        Assert.True(result.Totals.RelayKills >= 1, report);
        Assert.True(result.Totals.AgentKills >= 1, report);
        Assert.True(result.Totals.HopsEstablished > SoakOptions.Quick.Pairs * 2, report);
        Assert.True(result.Passed, report);
    }
}
