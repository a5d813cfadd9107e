using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Identity.Keys;

public sealed class FileKeyVaultOptionsTests
{
    [Fact]
    public void DefaultsAreProductionStrength()
    {
        var options = new FileKeyVaultOptions();

        Assert.Equal(64 * 1024, options.MemorySizeKib);
        Assert.Equal(3, options.Iterations);
        Assert.Equal(options, FileKeyVaultOptions.Default);
    }

    [Theory]
    [InlineData(FileKeyVaultOptions.MinimumMemorySizeKib - 1)]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(FileKeyVaultOptions.MaximumMemorySizeKib + 1)]
    public void MemorySizeOutsideTheRangeIsRejected(int memorySizeKib)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FileKeyVaultOptions { MemorySizeKib = memorySizeKib });
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(FileKeyVaultOptions.MaximumIterations + 1)]
    public void IterationsOutsideTheRangeAreRejected(int iterations)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FileKeyVaultOptions { Iterations = iterations });
    }

    [Fact]
    public void TheFloorIsAccepted()
    {
        var options = new FileKeyVaultOptions { MemorySizeKib = 8 * 1024, Iterations = 1 };
        Assert.Equal(8192, options.MemorySizeKib);
    }

    [Fact]
    public void VaultToStringShowsCostButNoPassphrase()
    {
        var vault = new FileKeyVault("/tmp/not-created", "hunter2 hunter2".AsMemory(), new FileKeyVaultOptions { MemorySizeKib = 8192, Iterations = 1 });
        var text = vault.ToString();

        Assert.Contains("m=8192 KiB t=1 p=1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
    }
}
