namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels identity create|show|rotate|export</c>.</summary>
public sealed class IdentityCommandTests : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public void Dispose() => _sandbox.Dispose();

    [Fact]
    public async Task CreateShowRotateKeepsTheIdentifierAndChangesTheKey()
    {
        var created = (await _sandbox.RunAsync("identity", "create", "--name", "alice", "--insecure-fast-kdf")).Succeeded();
        var identifier = created.Field("identifier");
        var firstKey = created.Field("public key");
        Assert.Matches("^I[0-9a-f]{64}$", identifier);
        Assert.Matches("^[0-9a-f]{64}$", firstKey);

        var shown = (await _sandbox.RunAsync("identity", "show", "--name", "alice")).Succeeded();
        Assert.Equal(identifier, shown.Field("identifier"));
        Assert.Equal(firstKey, shown.Field("public key"));
        Assert.Equal("1", shown.Field("changes"));

        var rotated = (await _sandbox.RunAsync("identity", "rotate", "--name", "alice", "--insecure-fast-kdf")).Succeeded();
        Assert.Equal(identifier, rotated.Field("identifier"));
        Assert.Equal(firstKey, rotated.Field("previous key"));
        Assert.NotEqual(firstKey, rotated.Field("public key"));

        var json = (await _sandbox.RunAsync("identity", "show", "--name", "alice", "--json")).Succeeded().Json;
        Assert.Equal(identifier, json.GetProperty("identifier").GetString());
        Assert.Equal(rotated.Field("public key"), json.GetProperty("publicKey").GetString());
        Assert.Equal(2, json.GetProperty("changes").GetInt32());
        var history = json.GetProperty("history").EnumerateArray().ToList();
        Assert.Equal([firstKey, rotated.Field("public key")], history.Select(c => c.GetProperty("publicKey").GetString()));
        Assert.True(File.Exists(_sandbox.PathOf(".securechannels/keys/alice-1.key")));
        Assert.True(File.Exists(_sandbox.PathOf(".securechannels/keys/alice-2.key")));
    }

    [Fact]
    public async Task CreateJsonHasIdentifierPublicKeyAndOneChange()
    {
        var json = (await _sandbox.RunAsync("identity", "create", "--name", "agent-7", "--dir", "store", "--insecure-fast-kdf", "--json")).Succeeded().Json;
        Assert.Matches("^I[0-9a-f]{64}$", json.GetProperty("identifier").GetString());
        Assert.Matches("^[0-9a-f]{64}$", json.GetProperty("publicKey").GetString());
        Assert.Equal(1, json.GetProperty("changes").GetInt32());
        Assert.True(File.Exists(_sandbox.PathOf("store/agent-7.identity")));
        Assert.True(File.Exists(_sandbox.PathOf("store/keys/agent-7-1.key")));
    }

    [Fact]
    public async Task ExportedHistoryShowsTheSameIdentity()
    {
        var identifier = await _sandbox.CreateIdentityAsync("alice");
        (await _sandbox.RunAsync("identity", "rotate", "--name", "alice", "--insecure-fast-kdf")).Succeeded();
        (await _sandbox.RunAsync("identity", "export", "--name", "alice", "--out", "exported.identity")).Succeeded();

        var json = (await _sandbox.RunAsync("identity", "show", "--file", "exported.identity", "--json")).Succeeded().Json;
        Assert.Equal(identifier, json.GetProperty("identifier").GetString());
        Assert.Equal(2, json.GetProperty("changes").GetInt32());
    }

    [Fact]
    public async Task CreatingAnExistingIdentityIsRefused()
    {
        (await _sandbox.RunAsync("identity", "create", "--name", "alice", "--insecure-fast-kdf")).Succeeded();
        var again = (await _sandbox.RunAsync("identity", "create", "--name", "alice", "--insecure-fast-kdf")).Exited(2);
        Assert.StartsWith("error: ", again.Stderr, StringComparison.Ordinal);
        Assert.Contains("already exists", again.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHistoryWhoseSignatureWasAlteredDoesNotVerify()
    {
        await _sandbox.CreateIdentityAsync("alice");
        var bytes = await File.ReadAllBytesAsync(_sandbox.PathOf("alice.identity"));

        // The first change ends with its 64-byte signature and a nil previous signature (0xc0).
        bytes[^2] ^= 0x01;
        await File.WriteAllBytesAsync(_sandbox.PathOf("tampered.identity"), bytes);

        var shown = (await _sandbox.RunAsync("identity", "show", "--file", "tampered.identity")).Exited(1);
        Assert.Contains("BadSignature", shown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWrongPassphraseIsAKeyStoreError()
    {
        await _sandbox.CreateIdentityAsync("alice");
        var rotated = (await _sandbox.RunAsync(["identity", "rotate", "--name", "alice"], "not the passphrase")).Exited(2);
        Assert.Contains("WrongPassphrase", rotated.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("not the passphrase", rotated.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnknownOrUnsafeNameIsAUsageError()
    {
        var unknown = (await _sandbox.RunAsync("identity", "show", "--name", "nobody")).Exited(2);
        Assert.Contains("no identity named 'nobody'", unknown.Stderr, StringComparison.Ordinal);

        var escaping = (await _sandbox.RunAsync("identity", "show", "--name", "../etc/passwd")).Exited(2);
        Assert.Contains("not an identity name", escaping.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ShowNeedsExactlyOneOfNameAndFile()
    {
        var neither = (await _sandbox.RunAsync("identity", "show")).Exited(2);
        Assert.Contains("exactly one of --name and --file", neither.Stderr, StringComparison.Ordinal);
    }
}
