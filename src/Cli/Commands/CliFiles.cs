using System.Security.Cryptography;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Cli.Commands;

/// <summary>
/// Reading and writing the CLI's files: identity histories (<c>.identity</c>), credential chains (<c>.chain</c>) and
/// signed revocation lists (<c>.revocations</c>), each the library's canonical encoding, nothing around it.
/// Every decoding error becomes a <see cref="CliException"/> (exit 2) naming the file and the library's error kind.
/// </summary>
internal static class CliFiles
{
    /// <summary>Reads a file of at most <paramref name="maxBytes"/> bytes (the decoder's own limit), refusing larger ones unread.</summary>
    public static byte[] Read(string path, int maxBytes, string what)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (stream.Length > maxBytes)
            {
                throw CliException.Usage($"{path}: {stream.Length} bytes is more than any {what} ({maxBytes} bytes at most).");
            }

            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw CliException.Usage($"{path}: no such file.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.Usage($"{path}: cannot read: {e.Message}");
        }
    }

    /// <summary>
    /// Writes <paramref name="contents"/> to <paramref name="path"/> through a temporary file in the same directory and a
    /// rename, so readers never see a partial file. Replaces an existing file only when <paramref name="overwrite"/>.
    /// </summary>
    public static void Write(string path, byte[] contents, bool overwrite = true)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full) ?? throw CliException.Usage($"{path}: not a file path.");
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            Directory.CreateDirectory(directory);
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(contents);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite);
        }
        catch (IOException) when (!overwrite && File.Exists(full))
        {
            throw CliException.Usage($"{path} already exists.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.Usage($"{path}: cannot write: {e.Message}");
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Decodes an identity history file; it is not verified yet.</summary>
    public static IdentityHistory ReadHistory(string path)
    {
        var bytes = Read(path, IdentityLimits.MaxHistoryLength, "identity history");
        try
        {
            return IdentityHistory.Decode(bytes);
        }
        catch (IdentityException e)
        {
            throw CliException.Usage($"{path}: not an identity history ({e.Kind}): {e.Message}");
        }
    }

    /// <summary>Decodes and verifies an identity history file used as input (anchor, subject, issuer): one that does not verify is bad input.</summary>
    public static VerifiedIdentity ReadVerifiedHistory(string path)
    {
        var history = ReadHistory(path);
        try
        {
            return history.Verify();
        }
        catch (IdentityException e)
        {
            throw CliException.Usage($"{path}: the identity history does not verify ({e.Kind}): {e.Message}");
        }
    }

    /// <summary>Decodes a credential chain file; nothing is verified.</summary>
    public static CredentialChain ReadChain(string path)
    {
        var bytes = Read(path, CredentialLimits.MaxChainPresentationLength, "credential chain");
        try
        {
            return CredentialChain.Decode(bytes);
        }
        catch (CredentialException e)
        {
            throw CliException.Usage($"{path}: not a credential chain ({e.Kind}): {e.Message}");
        }
    }

    /// <summary>Decodes a signed revocation list file; the signature is not checked.</summary>
    public static SignedRevocationList ReadRevocations(string path)
    {
        var bytes = Read(path, CredentialLimits.MaxRevocationListLength + 256, "signed revocation list");
        try
        {
            return SignedRevocationList.Decode(bytes);
        }
        catch (CredentialException e)
        {
            throw CliException.Usage($"{path}: not a signed revocation list ({e.Kind}): {e.Message}");
        }
    }
}
