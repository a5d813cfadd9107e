namespace SecureChannels.Cli.Tests;

/// <summary>What every command promises: usage errors exit 2, signing needs the passphrase, secrets never appear.</summary>
public sealed class CliContractTests : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public void Dispose() => _sandbox.Dispose();

    [Theory]
    [InlineData("identity create --name alice --insecure-fast-kdf")]
    [InlineData("identity rotate --name alice --insecure-fast-kdf")]
    [InlineData("credential issue --authority alice --subject alice.identity --valid-for 1h --out x.chain")]
    [InlineData("credential delegate --holder alice --chain x.chain --subject alice.identity --out y.chain")]
    [InlineData("revoke --authority alice --principal user:x --out x.revocations")]
    public async Task AMissingPassphraseIsAClearErrorWithExitTwo(string commandLine)
    {
        var result = (await _sandbox.RunAsync(commandLine.Split(' '), passphrase: null)).Exited(2);
        Assert.Equal("error: SECURECHANNELS_PASSPHRASE is not set: this command signs, and identity keys are encrypted under the passphrase in that environment variable.", result.Stderr.Trim());
        Assert.Equal(string.Empty, result.Stdout);
        Assert.False(Directory.Exists(_sandbox.PathOf(".securechannels")));
    }

    [Theory]
    [InlineData("identity")]
    [InlineData("credential", "verify", "x.chain")]
    [InlineData("credential", "issue", "--authority", "a")]
    [InlineData("revoke", "show")]
    [InlineData("policy", "check", "--chain", "x.chain", "--trust", "a.identity", "--policy", "true", "--unknown")]
    public async Task UsageErrorsExitTwo(params string[] arguments)
    {
        var result = (await _sandbox.RunAsync(arguments)).Exited(2);
        Assert.StartsWith("error: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("--help' for usage.", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoOutputEverContainsThePassphrase()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await Scenario.DelegateToBobAsync(_sandbox);
        (await _sandbox.RunAsync("identity", "rotate", "--name", "alice", "--insecure-fast-kdf", "--json")).Succeeded();
        (await _sandbox.RunAsync("revoke", "--authority", "authority", "--subject", "bob.identity", "--out", "r.revocations", "--json")).Succeeded();
        (await _sandbox.RunAsync("credential", "show", "bob.chain", "--json")).Succeeded();
        (await _sandbox.RunAsync(["identity", "rotate", "--name", "bob"], "wrong passphrase")).Exited(2);

        Assert.NotEmpty(_sandbox.History);
        foreach (var result in _sandbox.History)
        {
            var output = result.Stdout + result.Stderr;
            Assert.DoesNotContain(CliSandbox.Passphrase, output, StringComparison.Ordinal);
            Assert.DoesNotContain("wrong passphrase", output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task JsonOutputIsOneObjectForEveryCommand()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        string[][] commands =
        [
            ["identity", "show", "--name", "alice", "--json"],
            ["identity", "export", "--name", "alice", "--out", "a.identity", "--json"],
            ["credential", "show", "alice.chain", "--json"],
            ["credential", "verify", "alice.chain", "--trust", "authority.identity", "--json"],
            ["revoke", "--authority", "authority", "--principal", "user:x", "--out", "r.revocations", "--json"],
            ["revoke", "show", "r.revocations", "--json"],
            ["policy", "check", "--policy", "true", "--chain", "alice.chain", "--trust", "authority.identity", "--json"],
        ];
        foreach (var command in commands)
        {
            var json = (await _sandbox.RunAsync(command)).Succeeded().Json;
            Assert.NotEmpty(json.EnumerateObject());
            Assert.All(json.EnumerateObject(), p => Assert.True(char.IsAsciiLetterLower(p.Name[0]), $"{p.Name} is not camelCase"));
        }
    }
}
