using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Identity.Keys;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "securechannels-keys-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}

internal static class KeyTestSupport
{
    public const string Passphrase = "correct horse battery staple";

    /// <summary>The cheapest accepted Argon2id cost (8 MiB, 1 pass), so tests stay fast.</summary>
    public static readonly FileKeyVaultOptions LowCost = new()
    {
        MemorySizeKib = FileKeyVaultOptions.MinimumMemorySizeKib,
        Iterations = FileKeyVaultOptions.MinimumIterations,
    };

    public static FileKeyVault Vault(string directory, string passphrase = Passphrase) =>
        new(directory, passphrase.AsMemory(), LowCost);

    public static async Task<KeyStoreErrorKind> KindOfFailureAsync(Func<Task> action)
    {
        var exception = await Assert.ThrowsAsync<KeyStoreException>(action);
        return exception.Kind;
    }
}
