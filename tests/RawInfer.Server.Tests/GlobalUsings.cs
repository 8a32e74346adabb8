global using RawInfer.Client;
global using RawInfer.Protocol;
global using RawInfer.Tests;
global using Xunit;
