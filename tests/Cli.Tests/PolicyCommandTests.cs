namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels policy check</c>.</summary>
public sealed class PolicyCommandTests : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public void Dispose() => _sandbox.Dispose();

    [Fact]
    public async Task APolicyTheVerifiedPeerSatisfiesAllows()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        var policy = $"""
            subject.role == "billing" && "prod" in subject.env && subject.env in ["prod", "staging"]
            && peer.identifier == "{scenario.Alice}" && peer.principal == "user:carol@example.com" && peer.chain_length == 1
            && context.resource == "invoices" && "read" in context.actions
            """;

        var allowed = (await _sandbox.RunAsync(
            "policy", "check", "--policy", policy, "--chain", "alice.chain", "--trust", "authority.identity",
            "--context", "resource=invoices", "--context", "actions=read", "--context", "actions=list")).Succeeded();
        Assert.Equal("ALLOW", allowed.Lines[0]);
        Assert.Equal(scenario.Alice, allowed.Field("subject"));
    }

    [Fact]
    public async Task APolicyTheVerifiedPeerDoesNotSatisfyDenies()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        var denied = (await _sandbox.RunAsync("policy", "check", "--policy", "subject.role == \"admin\"", "--chain", "alice.chain", "--trust", "authority.identity")).Exited(1);
        Assert.StartsWith("DENY", denied.Lines[0], StringComparison.Ordinal);

        // A set is not equal to one of its elements, and a missing name never allows, even negated.
        (await _sandbox.RunAsync("policy", "check", "--policy", "subject.env == \"prod\"", "--chain", "alice.chain", "--trust", "authority.identity")).Exited(1);
        (await _sandbox.RunAsync("policy", "check", "--policy", "!(context.resource == \"x\")", "--chain", "alice.chain", "--trust", "authority.identity")).Exited(1);
    }

    [Fact]
    public async Task JsonGivesTheDecisionAndWhatItWasBasedOn()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        await File.WriteAllTextAsync(_sandbox.PathOf("billing.policy"), "subject.role == \"billing\"\n&& context.resource == \"invoices\"\n");

        var allow = (await _sandbox.RunAsync("policy", "check", "--policy-file", "billing.policy", "--chain", "alice.chain", "--trust", "authority.identity", "--context", "resource=invoices", "--json")).Succeeded().Json;
        Assert.Equal("allow", allow.GetProperty("decision").GetString());
        Assert.True(allow.GetProperty("verified").GetBoolean());
        Assert.Equal(scenario.Alice, allow.GetProperty("subject").GetString());
        Assert.Equal(1, allow.GetProperty("hops").GetInt32());
        Assert.Equal("invoices", allow.GetProperty("context").GetProperty("resource").GetString());
        Assert.StartsWith("subject.role == \"billing\"", allow.GetProperty("policy").GetString(), StringComparison.Ordinal);

        var deny = (await _sandbox.RunAsync("policy", "check", "--policy-file", "billing.policy", "--chain", "alice.chain", "--trust", "authority.identity", "--context", "resource=payroll", "--json")).Exited(1).Json;
        Assert.Equal("deny", deny.GetProperty("decision").GetString());
        Assert.True(deny.GetProperty("verified").GetBoolean());
    }

    [Fact]
    public async Task AChainThatDoesNotVerifyDenies()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await Scenario.DelegateToBobAsync(_sandbox);
        (await _sandbox.RunAsync("revoke", "--authority", "authority", "--subject", "bob.identity", "--out", "authority.revocations")).Succeeded();

        var text = (await _sandbox.RunAsync("policy", "check", "--policy", "true", "--chain", "bob.chain", "--trust", "authority.identity", "--revocations", "authority.revocations")).Exited(1);
        Assert.StartsWith("DENY: the chain does not verify: Revoked:", text.Lines[0], StringComparison.Ordinal);

        var json = (await _sandbox.RunAsync("policy", "check", "--policy", "true", "--chain", "bob.chain", "--trust", "authority.identity", "--revocations", "authority.revocations", "--json")).Exited(1).Json;
        Assert.Equal("deny", json.GetProperty("decision").GetString());
        Assert.False(json.GetProperty("verified").GetBoolean());
        Assert.Equal("Revoked", json.GetProperty("kind").GetString());
    }

    [Fact]
    public async Task ASyntaxErrorExitsTwoWithItsPosition()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        var result = (await _sandbox.RunAsync("policy", "check", "--policy", "subject.role == == \"admin\"", "--chain", "alice.chain", "--trust", "authority.identity")).Exited(2);
        Assert.StartsWith("error: policy: UnexpectedToken: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("(line 1, column 17)", result.Stderr, StringComparison.Ordinal);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("  subject.role == == \"admin\"", lines[1].TrimEnd('\r'));
        Assert.Equal("                  ^", lines[2].TrimEnd('\r'));
        Assert.Equal(string.Empty, result.Stdout);
    }

    [Fact]
    public async Task ABadContextNameIsAUsageErrorEvenForAChainThatWouldBeDenied()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        var result = (await _sandbox.RunAsync("policy", "check", "--policy", "true", "--chain", "alice.chain", "--trust", "alice.identity", "--context", "Resource=x")).Exited(2);
        Assert.Equal("error: --context: 'context.Resource' is not a valid policy name (lower-case dotted identifiers, for example subject.role).", result.Stderr.Trim());
    }

    [Fact]
    public async Task PolicyAndPolicyFileAreExclusive()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await File.WriteAllTextAsync(_sandbox.PathOf("p.policy"), "true");
        var both = (await _sandbox.RunAsync("policy", "check", "--policy", "true", "--policy-file", "p.policy", "--chain", "alice.chain", "--trust", "authority.identity")).Exited(2);
        Assert.Contains("exactly one of --policy and --policy-file", both.Stderr, StringComparison.Ordinal);
    }
}
