; Inno Setup 6 script: the Windows installer of maskdesk's PyInstaller bundle.
; build.py compiles it on Windows after the bundle:
;   iscc /DAppVersion=0.1.0 /DBundleDir=dist\maskdesk /DRootDir=. /Odist packaging\windows\maskdesk.iss
; It installs per user by default (no administrator needed) or for all users, adds Start
; menu (and optionally desktop) shortcuts to maskdeskw.exe (the window, no console), and can
; put maskdesk.exe (the command line) on the PATH. Uninstalling removes all of it; what the
; user made (%APPDATA%\maskdesk, settings, downloaded weights) stays.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef RootDir
  #define RootDir "..\.."
#endif
#ifndef BundleDir
  #define BundleDir RootDir + "\dist\maskdesk"
#endif

[Setup]
AppId={{6F0B8C1E-2D7A-4E59-9C3B-8A1D5E4F7B20}
AppName=maskdesk
AppVersion={#AppVersion}
AppPublisher=the maskdesk authors
DefaultDirName={autopf}\maskdesk
DefaultGroupName=maskdesk
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=maskdesk-{#AppVersion}-windows-x64-setup
SetupIconFile={#RootDir}\resources\icons\maskdesk.ico
UninstallDisplayIcon={app}\maskdeskw.exe
LicenseFile={#RootDir}\resources\licenses\maskdesk.txt
Compression=lzma2/max
SolidCompression=yes
; Tell Explorer that PATH changed when the PATH task ran.
ChangesEnvironment=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add maskdesk to the PATH (the command line: maskdesk predict ...)"; GroupDescription: "Command line:"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\maskdesk"; Filename: "{app}\maskdeskw.exe"
Name: "{autodesktop}\maskdesk"; Filename: "{app}\maskdeskw.exe"; Tasks: desktopicon

[Registry]
; Per-user PATH when installed for the user, machine PATH when installed for all users.
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: (not IsAdminInstallMode) and NeedsAddPath(ExpandConstant('{app}'))
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: IsAdminInstallMode and NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\maskdeskw.exe"; Description: "{cm:LaunchProgram,maskdesk}"; Flags: nowait postinstall skipifsilent

[Code]
function PathKey(): String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function PathRoot(): Integer;
begin
  if IsAdminInstallMode then
    Result := HKEY_LOCAL_MACHINE
  else
    Result := HKEY_CURRENT_USER;
end;

function NeedsAddPath(Dir: String): Boolean;
var
  Paths: String;
begin
  if not RegQueryStringValue(PathRoot(), PathKey(), 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Paths, Dir: String;
  P: Integer;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  if not RegQueryStringValue(PathRoot(), PathKey(), 'Path', Paths) then
    exit;
  Dir := ExpandConstant('{app}');
  P := Pos(';' + Uppercase(Dir), Uppercase(Paths));
  if P > 0 then
  begin
    Delete(Paths, P, Length(Dir) + 1);
    RegWriteExpandStringValue(PathRoot(), PathKey(), 'Path', Paths);
  end;
end;
