using System.CommandLine;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Cli.Commands;

/// <summary>
/// The CLI's identity directory: <c>NAME.identity</c> holds the encoded history and <c>keys/</c> is a
/// <see cref="FileKeyVault"/> whose key <c>NAME-N</c> is the key of change N (1-based), so the current key's
/// name follows from the history's length. Rotated-away keys stay in the vault.
/// </summary>
internal sealed class IdentityStore
{
    /// <summary>Where the passphrase of every key in the vault comes from.</summary>
    public const string PassphraseVariable = "SECURECHANNELS_PASSPHRASE";

    private const string DefaultDirectory = ".securechannels";

    // NAME-N must be a key name ([a-z0-9][a-z0-9._-]{0,63}) for N up to 256 changes.
    private const int MaxNameLength = 60;

    private readonly bool _fastKdf;

    public IdentityStore(string directory, bool fastKdf = false)
    {
        DirectoryPath = Path.GetFullPath(directory);
        _fastKdf = fastKdf;
    }

    public string DirectoryPath { get; }

    public static Option<string> DirectoryOption() => new("--dir")
    {
        HelpName = "PATH",
        Description = "The identity directory: NAME.identity files and the encrypted key vault in keys/.",
        DefaultValueFactory = _ => DefaultDirectory,
    };

    public static Option<bool> FastKdfOption() => new("--insecure-fast-kdf")
    {
        Description = "TESTING ONLY: encrypt new keys with the lowest Argon2id cost the vault accepts (8 MiB, 1 pass).",
        Hidden = true,
    };

    public static Option<string> NameOption(string name, string description) => new(name)
    {
        Required = true,
        HelpName = "NAME",
        Description = description,
    };

    /// <summary>The passphrase from <see cref="PassphraseVariable"/>; a usage error when it is not set. Never printed.</summary>
    public static ReadOnlyMemory<char> RequirePassphrase() =>
        Environment.GetEnvironmentVariable(PassphraseVariable) is { Length: > 0 } passphrase
            ? passphrase.AsMemory()
            : throw CliException.Usage($"{PassphraseVariable} is not set: this command signs, and identity keys are encrypted under the passphrase in that environment variable.");

    public string HistoryPath(string name)
    {
        if (!IsValidName(name))
        {
            throw CliException.Usage($"'{name}' is not an identity name: 1 to {MaxNameLength} characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit.");
        }

        return Path.Combine(DirectoryPath, name + ".identity");
    }

    /// <summary>The stored history of <paramref name="name"/>, decoded but not verified.</summary>
    public IdentityHistory ReadHistory(string name)
    {
        var path = HistoryPath(name);
        return File.Exists(path)
            ? CliFiles.ReadHistory(path)
            : throw CliException.Usage($"no identity named '{name}' in {DirectoryPath} (create it with 'securechannels identity create --name {name}').");
    }

    /// <summary>Generates a key, creates the identity and stores its history; refuses an existing name.</summary>
    public async Task<OpenIdentity> CreateAsync(string name, ReadOnlyMemory<char> passphrase, CancellationToken cancellationToken)
    {
        var path = HistoryPath(name);
        if (File.Exists(path))
        {
            throw CliException.Usage($"an identity named '{name}' already exists ({path}).");
        }

        EnsureDirectory();
        var vault = Vault(passphrase);
        var keyName = KeyName(name, 1);
        var signer = await vault.CreateAsync(keyName, cancellationToken).ConfigureAwait(false);
        try
        {
            var agent = await AgentIdentity.CreateAsync(signer, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            CliFiles.Write(path, agent.History.Encoded, overwrite: false);
            return new OpenIdentity(agent);
        }
        catch
        {
            await signer.DisposeAsync().ConfigureAwait(false);
            await vault.DeleteAsync(keyName, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Loads <paramref name="name"/> with the signer of its current key (one Argon2id derivation).</summary>
    public async Task<OpenIdentity> OpenAsync(string name, ReadOnlyMemory<char> passphrase, CancellationToken cancellationToken)
    {
        var history = ReadHistory(name);
        var verified = Verify(name, history);
        var signer = await Vault(passphrase).OpenAsync(KeyName(name, verified.History.Changes.Length), cancellationToken).ConfigureAwait(false);
        try
        {
            return new OpenIdentity(AgentIdentity.Load(history, signer));
        }
        catch (IdentityException e)
        {
            await signer.DisposeAsync().ConfigureAwait(false);
            throw CliException.Usage($"identity '{name}': {e.Message}");
        }
    }

    /// <summary>Generates the next key, rotates the identity to it and stores the longer history.</summary>
    public async Task<OpenIdentity> RotateAsync(string name, ReadOnlyMemory<char> passphrase, CancellationToken cancellationToken)
    {
        await using var current = await OpenAsync(name, passphrase, cancellationToken).ConfigureAwait(false);
        var vault = Vault(passphrase);
        var keyName = KeyName(name, current.Agent.History.Changes.Length + 1);
        if (await vault.ExistsAsync(keyName, cancellationToken).ConfigureAwait(false))
        {
            throw CliException.Usage($"the key '{keyName}' already exists but the history of '{name}' does not use it: an earlier rotation did not finish ({vault.GetKeyFilePath(keyName)}).");
        }

        var signer = await vault.CreateAsync(keyName, cancellationToken).ConfigureAwait(false);
        try
        {
            var rotated = await current.Agent.RotateAsync(signer, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            CliFiles.Write(HistoryPath(name), rotated.History.Encoded, overwrite: true);
            return new OpenIdentity(rotated);
        }
        catch
        {
            // The history file was not replaced (the write is a single rename, and it is the last step), so the new key is unused.
            await signer.DisposeAsync().ConfigureAwait(false);
            await vault.DeleteAsync(keyName, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Verifies a stored history; one that does not verify is a damaged store (bad input).</summary>
    public VerifiedIdentity Verify(string name, IdentityHistory history)
    {
        try
        {
            return history.Verify();
        }
        catch (IdentityException e)
        {
            throw CliException.Usage($"{HistoryPath(name)}: the identity history does not verify ({e.Kind}): {e.Message}");
        }
    }

    private static string KeyName(string name, int change) => $"{name}-{change}";

    private static bool IsValidName(string name) =>
        name is { Length: > 0 and <= MaxNameLength }
        && (char.IsAsciiLetterLower(name[0]) || char.IsAsciiDigit(name[0]))
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-');

    private FileKeyVault Vault(ReadOnlyMemory<char> passphrase) => new(
        Path.Combine(DirectoryPath, "keys"),
        passphrase,
        _fastKdf ? new FileKeyVaultOptions { MemorySizeKib = FileKeyVaultOptions.MinimumMemorySizeKib, Iterations = FileKeyVaultOptions.MinimumIterations } : null);

    private void EnsureDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(DirectoryPath);
        }
        else
        {
            Directory.CreateDirectory(DirectoryPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}

/// <summary>An identity with the signer of its current key; disposing releases (wipes) the key.</summary>
internal sealed class OpenIdentity(AgentIdentity agent) : IAsyncDisposable
{
    public AgentIdentity Agent { get; } = agent;

    public ValueTask DisposeAsync() => Agent.Signer.DisposeAsync();
}
